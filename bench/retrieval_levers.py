"""FinanceBench retrieval levers that need no new model (issue 13, session 19): evidence-page recall@k
of each against dense retrieval, on the same questions, with paired bootstrap intervals.

- ``focus``: the question without its answer-format sentences ("Answer in USD millions.", "Round
  your answer to two decimal places.") before it is embedded.
- ``multi``: each sentence of the question retrieved on its own (and the whole), fused by
  reciprocal rank.
- ``boost`` / ``boost-focus`` / ``boost-hybrid``: the first stage's best 20, then Markdown-table chunks
  whose first lines name the statement the question asks to use (balance sheet, income statement,
  cash flow statement) moved to the front.
- ``hybrid-focus``: dense and BM25 on the focused question, fused.
- ``judge`` / ``judge-fused``: the decoder as a pointwise reranker of dense's best 20 (log-odds of
  " Yes" to "Does the passage contain the information needed to answer the question?"), alone and
  fused by reciprocal rank with dense's order (~5 s a question on 2 cores).

Reads a home built by bench/table_retrieval.py (HOME/tables: FinanceBench's filings, tables as Markdown).
Usage: .venv/bin/python -m bench.retrieval_levers --path FILE --home HOME/tables [--k 4] [--no-judge]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

POOL = 20
_SENTENCE = re.compile(r"(?<=[.?!])\s+(?=[A-Z])")
_FORMAT = re.compile(r"^(answer|round|please|give|respond|provide|express|state|calculate|address|base|using|use|by|"
                     r"in agreement|according|based|assume|if )", re.I)
STATEMENTS = {  # what a question says -> what the statement's heading says
    "balance": (r"balance sheet|statement of financial position", r"balance sheets?|financial position|total assets"),
    "income": (r"income statement|statement of income|p&l|profit and loss|statement of operations|statement of earnings",
               r"statements? of (consolidated )?(income|operations|earnings)|income statements?|net (income|earnings)"),
    "cash": (r"cash ?flow", r"statements? of cash flows|cash flows? statements?|operating activities"),
}


def sentences(question: str) -> list[str]:
    return [s.strip() for s in _SENTENCE.split(question) if s.strip()]


def focus(question: str) -> str:
    """The question without its answer-format sentences (a sentence ending in '?' is always kept)."""
    keep = [s for s in sentences(question) if not _FORMAT.match(s) or s.endswith("?")]
    return " ".join(keep) or question


def statements(question: str) -> list[str]:
    return [name for name, (asked, _) in STATEMENTS.items() if re.search(asked, question, re.I)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--no-judge", action="store_true", help="skip the decoder-as-reranker levers (the slow ones)")
    args = parser.parse_args()

    import torch

    from app.config import Settings
    from app.eval.datasets import read_dataset
    from app.eval.evidence import RetrievedChunk, evidence
    from app.eval.runner import document_file
    from app.eval.stats import paired_diff
    from app.core.service import LlocoService
    from indexing import lexical
    from indexing.catalog import Chunk
    from indexing.loaders import file_sha256
    from indexing.retrieval import Retriever

    service = LlocoService(Settings(home=args.home))
    evalset = read_dataset("financebench", args.path)
    row = service.collection_row("eval-financebench")
    index = service.index(row)
    by_hash = {d.content_hash: d.id for d in service.list_documents("eval-financebench") if d.status == "ready"}
    chunks: dict[int, Chunk] = {}

    def chunk(cid: int) -> Chunk:
        if cid not in chunks:
            with service.sessions() as session:
                chunks[cid] = session.get(Chunk, cid)
        return chunks[cid]

    retriever = Retriever(service.sessions, index, service.embedder)
    allowed: dict[int, list[int]] = {}  # document id -> its chunk ids, asked once

    def dense(q: str, n: int, docs: list[int]) -> list[int]:
        if docs[0] not in allowed:
            allowed[docs[0]] = retriever.chunk_ids(docs)
        return [cid for cid, _ in index.search(service.embedder.embed([q])[0], n, ids=allowed[docs[0]])]

    def bm25(q: str, n: int, docs: list[int]) -> list[int]:
        with service.sessions() as session:
            return [cid for cid, _ in lexical.search(session, index.collection_id, q, n, document_ids=docs)]

    def fused(*rankings: list[int], n: int = POOL) -> list[int]:
        return [cid for cid, _ in lexical.fuse([[(c, 0.0) for c in r] for r in rankings], n)]

    def boost(ranked: list[int], question: str) -> list[int]:
        asked = statements(question)

        def names_statement(cid: int) -> bool:
            text = chunk(cid).text
            return "|" in text and any(re.search(STATEMENTS[s][1], text[:400], re.I) for s in asked)
        return sorted(ranked, key=lambda c: not names_statement(c)) if asked else ranked

    decoder = service.decoder
    tok = decoder.tokenizer
    yes, no = (tok.encode(w, add_special_tokens=False)[-1] for w in (" Yes", " No"))

    def judged(question: str, ranked: list[int]) -> list[int]:
        def score(cid: int) -> float:
            prompt = (f"Passage:\n{chunk(cid).text[:1200]}\n\nQuestion: {focus(question)}\nDoes the passage contain the "
                      "information needed to answer the question? Answer Yes or No.")
            ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                          return_tensors="pt", return_dict=True)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(decoder.base_model(input_ids=ids).logits[0, -1].float(), -1)  # (vocab,)
            return float(logp[yes] - logp[no])
        scores = {cid: score(cid) for cid in ranked}
        return sorted(ranked, key=lambda c: -scores[c])

    levers = {
        "focus": lambda q, d: dense(focus(q), POOL, d),
        "multi": lambda q, d: fused(*[dense(s, POOL, d) for s in sentences(q)], dense(q, POOL, d)),
        "boost": lambda q, d: boost(dense(q, POOL, d), q),
        "boost-focus": lambda q, d: boost(dense(focus(q), POOL, d), q),
        "hybrid-focus": lambda q, d: fused(dense(focus(q), POOL, d), bm25(focus(q), POOL, d)),
        "boost-hybrid": lambda q, d: boost(fused(dense(focus(q), POOL, d), bm25(focus(q), POOL, d)), q),
    }
    if not args.no_judge:
        levers["judge"] = lambda q, d: judged(q, dense(q, POOL, d))
        levers["judge-fused"] = lambda q, d: fused(dense(q, POOL, d), judged(q, dense(q, POOL, d)))
    results: dict[str, dict[str, float]] = {"dense": {}, **{name: {} for name in levers}}
    for question in evalset.questions:
        document = evalset.document(question.doc_id)
        doc_id = by_hash.get(file_sha256(document_file(service, "financebench", document)))
        if doc_id is None or evidence("financebench", question, document, []) is None:
            continue
        rankings = {"dense": dense(question.question, args.k, [doc_id])}
        rankings |= {name: lever(question.question, [doc_id]) for name, lever in levers.items()}
        for name, ranked in rankings.items():
            found = [RetrievedChunk(chunk(c).text, chunk(c).page_start, chunk(c).page_end) for c in ranked[:args.k]]
            results[name][question.qid] = evidence("financebench", question, document, found).recall
        print(question.qid, {name: values[question.qid] for name, values in results.items()}, flush=True)
    print(f"\nFinanceBench: evidence page in the top {args.k}, each lever against dense (same questions)")
    print("| lever | n | recall | - dense [95 % interval] | wins/losses | verdict |\n|---|---|---|---|---|---|")
    print(f"| dense | {len(results['dense'])} | {sum(results['dense'].values()) / len(results['dense']):.3f} | | | |")
    for name in levers:
        d = paired_diff("recall", results[name], results["dense"], a_label=name, b_label="dense")
        print(f"| {name} | {d.n} | {d.mean_a:.3f} | {d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}] | {d.wins}/{d.losses} | {d.verdict} |")


if __name__ == "__main__":
    main()
