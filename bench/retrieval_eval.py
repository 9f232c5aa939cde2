"""Retrieval evaluation (issue 13): recall@k of the gold evidence per retrieval setting (dense, bm25,
hybrid), on the same questions, each restricted to its own document as `lloco eval run` asks them,
with paired bootstrap intervals against dense. Needs the collections an evaluation run ingested
(`eval-<dataset>` in the home).

Usage: .venv/bin/python -m bench.retrieval_eval --dataset hotpotqa --path FILE [--k 4] [--home HOME]
Prints one table per metric: setting, n, mean, difference to dense [95 % interval], verdict.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from app.eval.evidence import RetrievedChunk, evidence

SETTINGS = ("dense", "bm25", "hybrid")


def measure(service, dataset: str, path: Path, *, k: int = 4, limit: int | None = None) -> dict[str, dict[str, list]]:
    """{setting: {"recall": [...], "all": [...]}} over the questions whose evidence is known, in one order."""
    from sqlalchemy import select

    from app.eval.datasets import read_dataset
    from app.eval.runner import document_file
    from app.core.service import LlocoService
    from indexing.catalog import Chunk
    from indexing.loaders import file_sha256

    evalset = read_dataset(dataset, path, limit=limit)
    collection = f"eval-{dataset}"
    by_hash = {d.content_hash: d.id for d in service.list_documents(collection) if d.status == "ready"}
    out: dict[str, dict[str, list]] = {s: {"recall": [], "all": [], "qid": []} for s in SETTINGS}
    services = {s: LlocoService(service.settings.model_copy(update={"retrieval": s}), decoder=service.decoder,
                                embedder=service.embedder, compressor=service.compressor) for s in SETTINGS}
    for question in evalset.questions:
        document = evalset.document(question.doc_id)
        doc_id = by_hash.get(file_sha256(document_file(service, dataset, document)))  # as the runner ingested it
        if doc_id is None or evidence(dataset, question, document, []) is None:
            continue  # not ingested, or no gold evidence
        for setting, svc in services.items():
            found = svc.retrieve(collection, question.question, top_k=k, document_ids=[doc_id])
            with svc.sessions() as session:
                spans = {c.id: (c.page_start, c.page_end) for c in session.scalars(
                    select(Chunk).where(Chunk.id.in_([cit.chunk_id for cit, _ in found])))}
            chunks = [RetrievedChunk(text, *spans[cit.chunk_id]) for cit, text in found]
            result = evidence(dataset, question, document, chunks)
            out[setting]["recall"].append(result.recall)
            out[setting]["all"].append(float(result.all_found))
            out[setting]["qid"].append(question.qid)
    return out


def main() -> None:
    from app.config import Settings
    from app.eval.stats import paired_diff
    from app.core.service import LlocoService

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, choices=["hotpotqa", "financebench"])
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--home", type=Path)
    parser.add_argument("--json", type=Path, help="also write the per-question values here")
    args = parser.parse_args()
    settings = Settings(**({"home": args.home} if args.home else {}))
    results = measure(LlocoService(settings), args.dataset, args.path, k=args.k, limit=args.limit)
    for metric, label in (("recall", f"evidence recall@{args.k}"), ("all", f"all evidence in top-{args.k}")):
        print(f"\n{args.dataset}: {label}")
        print("| setting | n | mean | - dense [95 % interval] | verdict |\n|---|---|---|---|---|")
        base = results["dense"][metric]
        for setting in SETTINGS:
            values = results[setting][metric]
            if setting == "dense":
                print(f"| dense | {len(values)} | {sum(values) / max(len(values), 1):.3f} | | |")
                continue
            qids = results[setting]["qid"]
            d = paired_diff(metric, dict(zip(qids, values, strict=True)), dict(zip(qids, base, strict=True)),
                            a_label=setting, b_label="dense")
            print(f"| {setting} | {d.n} | {d.mean_a:.3f} | {d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | "
                  f"{d.verdict} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
