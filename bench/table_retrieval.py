"""Tables and retrieval (issue 13, item 2): FinanceBench evidence-page recall@k with its filings read
as pypdf text (`pdf_tables` off) and with their tables as Markdown (on), for each retrieval setting,
on the same questions, with paired bootstrap intervals (tables minus text).

Each variant is a home of its own (HOME/text, HOME/tables) holding an `eval-financebench` collection
built by the product's ingestion — loader, chunker, embedder, FAISS, BM25 postings, SQL — except the
summary vectors: they play no part in retrieval and are 86 % of ingestion's time, so this bench's
compressor writes zeros (its ident says so, and such a collection cannot be mixed with real ones).
Ingestion resumes: documents already in a home are skipped.

Usage: .venv/bin/python -m bench.table_retrieval --path FILE --home HOME [--k 4] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

VARIANTS = ("text", "tables")


def retrieval_only_compressor(decoder, kappa: int):
    """A :class:`model.compressor.Compressor` whose summary vectors are zeros (no decoder pass)."""
    import torch

    from model.compressor import Compressor, untrained_summary_embeddings

    class RetrievalOnly(Compressor):
        def compress(self, chunks: list[list[int]], *, batch_size: int = 8) -> list[torch.Tensor]:
            return [torch.zeros(self.kappa, self.summary_embeddings.shape[1], dtype=torch.float16) for _ in chunks]

    return RetrievalOnly(decoder, untrained_summary_embeddings(decoder, kappa), trained=False,
                         ident=f"retrieval-only-zeros-k{kappa}")


def build(home: Path, *, tables: bool, path: Path) -> object:
    """The variant's service, its collection holding every FinanceBench filing of ``path``."""
    from app.config import Settings
    from app.eval.datasets import read_dataset
    from app.eval.runner import document_file
    from app.core.service import LlocoService
    from model.errors import InvalidInputError

    settings = Settings(home=home, pdf_tables=tables)
    first = LlocoService(settings)
    service = LlocoService(settings, decoder=first.decoder,
                           compressor=retrieval_only_compressor(first.decoder, settings.summary_tokens))
    try:
        service.create_collection("eval-financebench")
    except InvalidInputError:
        pass  # already there: resume
    evalset = read_dataset("financebench", path)
    files = sorted({document_file(service, "financebench", evalset.document(q.doc_id)) for q in evalset.questions})
    for result in service.ingest("eval-financebench", files):
        print(f"  {'tables' if tables else 'text'}: {Path(result.path).name}: {result.status}, {result.n_chunks} chunks, "
              f"tables on {len(result.table_pages)} pages, {result.seconds:.0f} s", flush=True)
    return service


def main() -> None:
    from app.eval.stats import paired_diff
    from bench.retrieval_eval import SETTINGS, measure

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--json", type=Path, help="also write the per-question values here")
    args = parser.parse_args()
    results = {}
    for variant in VARIANTS:
        service = build(args.home / variant, tables=variant == "tables", path=args.path)
        results[variant] = measure(service, "financebench", args.path, k=args.k)
    print(f"\nFinanceBench: evidence page in the top {args.k} (each question restricted to its own filing)")
    print("| retrieval | n | text | tables | tables - text [95 % interval] | wins/losses | verdict |\n"
          "|---|---|---|---|---|---|---|")
    for setting in SETTINGS:
        a, b = results["tables"][setting], results["text"][setting]
        d = paired_diff("recall", dict(zip(a["qid"], a["recall"], strict=True)),
                        dict(zip(b["qid"], b["recall"], strict=True)), a_label="tables", b_label="text")
        print(f"| {setting} | {d.n} | {d.mean_b:.3f} | {d.mean_a:.3f} | {d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | "
              f"{d.wins}/{d.losses} | {d.verdict} |")
    base = results["text"]["dense"]
    print("\nagainst dense on text (the issue's baseline):")
    for setting in SETTINGS:
        a = results["tables"][setting]
        d = paired_diff("recall", dict(zip(a["qid"], a["recall"], strict=True)),
                        dict(zip(base["qid"], base["recall"], strict=True)), a_label=f"tables {setting}", b_label="text dense")
        print(f"  tables + {setting}: {d.mean_a:.3f} vs {d.mean_b:.3f}: {d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}] {d.verdict}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
