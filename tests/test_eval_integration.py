"""The evaluation harness end to end on the real default model: two QuALITY-layout questions
about the bundled coffee history, asked in every mode, scored, stored and reported with plots."""

from __future__ import annotations

import json

import pytest

from app.core.demo import DEMO_DIR
from app.eval.report import write_report
from app.eval.summary import summarize
from app.eval.runner import EvalSpec, load_run, run_eval

pytestmark = pytest.mark.integration

QUESTIONS = [
    ("In which city did the first coffeehouse in England open?", ["London", "Oxford", "Cambridge", "Bristol"], "B"),
    ("Where does the earliest reliable evidence of coffee drinking come from?",
     ["Brazil", "France", "Yemen", "Java"], "C"),
]


def test_quality_run_end_to_end(real_service, tmp_path):
    article = (DEMO_DIR / "coffee.txt").read_text(encoding="utf-8")
    instructions = [stem + "".join(f"\n({'ABCD'[i]}) {c}" for i, c in enumerate(choices)) for stem, choices, _ in QUESTIONS]
    outputs = [f"({letter}) {choices['ABCD'.index(letter)]}" for _, choices, letter in QUESTIONS]
    path = tmp_path / "quality.jsonl"
    path.write_text(json.dumps({"input": article, "instructions": instructions, "outputs": outputs}) + "\n")

    run_id = run_eval(real_service, EvalSpec("quality", str(path), top_k=2, collection_prefix="it-eval-"))
    run = load_run(real_service, run_id)
    assert run.info.status == "done" and len(run.rows) == 8  # 2 questions x lloco, lloco-pure, rag, full
    assert all(r.status == "ok" and r.prediction for r in run.rows), [(r.mode, r.error) for r in run.rows]
    for r in run.rows:
        assert set(r.score) == {"accuracy", "option_ll_accuracy", "option_ll_norm_accuracy"}
        assert len(r.details["option_logprobs"]) == 4 and all(v < 0 for v in r.details["option_logprobs"].values())
    summary = summarize(run)
    lloco, pure, rag, full = (summary.mode(m) for m in ("lloco", "lloco-pure", "rag", "full"))
    assert lloco.n_ok == pure.n_ok == rag.n_ok == full.n_ok == 2
    # 8 vectors stand for 256 tokens; lloco adds a few sentences within 1/8 of the chunks' text
    assert pure.prompt_tokens <= lloco.prompt_tokens < rag.prompt_tokens <= full.prompt_tokens
    context = {(r.qid, r.mode): r.context_tokens for r in run.rows}
    for qid in {r.qid for r in run.rows}:
        assert context[qid, "lloco"] <= max(context[qid, "lloco-pure"], 0.125 * context[qid, "rag"])
    assert summary.ratios["lloco/rag"]["prompt_tokens"] < 0.5
    # the plain-RAG baseline reads the text: its option log-likelihood finds both answers
    assert rag.metrics["option_ll_accuracy"] == 1.0

    files = write_report(run, tmp_path / "report")
    for name in ("quality", "prompt_tokens", "latency"):
        assert files[name].stat().st_size > 5000
    assert "| lloco | 2 | 0 |" in files["markdown"].read_text()
