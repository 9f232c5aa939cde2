"""Retrieval evaluation (issue 13): whether the retrieved chunks hold the gold evidence (HotpotQA's
supporting paragraphs, FinanceBench's pages), recorded by `lloco eval run` as evidence_recall /
evidence_all, and compared across retrieval settings by bench/retrieval_eval.py."""

from __future__ import annotations

import json

from app.eval.evidence import RetrievedChunk, evidence, gold_paragraphs
from app.eval.records import EvalDocument, EvalQuestion

LONG = "The Alpha band formed in Leeds in 1990 and released nine albums before splitting up in 2004. "
DOC = EvalDocument("d", "D", f"Alpha\n{LONG * 2}\n\nBeta\nBeta is a city on the coast.\n\nGamma\nGamma is a letter.", None)
QUESTION = EvalQuestion("q", "d", "Where was Alpha formed?", ["Leeds"], metadata={"gold_titles": ["Alpha", "Beta"]})


def test_a_gold_paragraph_is_found_in_any_chunk_that_holds_a_stretch_of_it():
    assert gold_paragraphs(QUESTION, DOC) == [LONG * 2, "Beta is a city on the coast."]
    cut = RetrievedChunk("...splitting up in 2004. The Alpha band formed in Leeds in 1990 and rel", 1, 1)  # a cut paragraph
    beta = RetrievedChunk("Beta\nBeta is a city on the coast.\n\nGamma", 1, 1)
    other = RetrievedChunk("Gamma\nGamma is a letter.", 1, 1)
    assert evidence("hotpotqa", QUESTION, DOC, [cut, beta]).all_found
    half = evidence("hotpotqa", QUESTION, DOC, [cut, other])
    assert (half.found, half.total, half.recall, half.all_found) == (1, 2, 0.5, False)
    assert evidence("hotpotqa", QUESTION, DOC, [other]).recall == 0.0


def test_financebench_evidence_pages_are_zero_based():
    q = EvalQuestion("f", "d", "Revenue?", ["$5"], metadata={"evidence_pages": [4]})
    assert evidence("financebench", q, DOC, [RetrievedChunk("x", 5, 6)]).all_found  # page 4 (0-based) = page 5
    assert not evidence("financebench", q, DOC, [RetrievedChunk("x", 1, 4)]).all_found
    assert evidence("financebench", EvalQuestion("g", "d", "?", ["1"]), DOC, []) is None  # no evidence given
    assert evidence("qasper", QUESTION, DOC, []) is None


def test_eval_run_records_evidence_and_the_bench_compares_settings(service, tmp_path):
    from app.eval.runner import EvalSpec, load_run, run_eval
    from bench.retrieval_eval import measure
    from indexing.retrieval import chunks_by_id

    items = [{"_id": f"id{i}", "question": f"Which city is on the coast {i}?", "answer": "Beta",
              "supporting_facts": [["Beta", 0], ["Alpha", 0]],
              "context": [["Alpha", [LONG]], ["Beta", ["Beta is a city on the coast. "]],
                          ["Gamma", ["Gamma is a letter of the Greek alphabet. " * 3]]]} for i in range(2)]
    path = tmp_path / "hotpot.json"
    path.write_text(json.dumps(items))
    run = load_run(service, run_eval(service, EvalSpec("hotpotqa", str(path), modes=("rag",), top_k=1)))
    for row in run.rows:
        chunks = [RetrievedChunk(c.text, c.page_start, c.page_end) for c in chunks_by_id(service.sessions, row.chunk_ids)]
        expected = evidence("hotpotqa", EvalQuestion(row.qid, row.doc_id, "", [], metadata={"gold_titles": ["Beta", "Alpha"]}),
                            EvalDocument(row.doc_id, "", "\n\n".join(f"{t}\n{''.join(s).strip()}" for t, s in items[0]["context"]), None),
                            chunks)
        assert row.score["evidence_recall"] == expected.recall and row.score["evidence_all"] == float(expected.all_found)
    assert run.info.settings["retrieval"] == "dense"
    results = measure(service, "hotpotqa", path, k=1)
    assert set(results) == {"dense", "bm25", "hybrid"}
    assert all(len(r["recall"]) == 2 and r["qid"] == ["id0", "id1"] for r in results.values()), results
    assert results["dense"]["recall"] == [r.score["evidence_recall"] for r in sorted(run.rows, key=lambda r: r.qid)]
