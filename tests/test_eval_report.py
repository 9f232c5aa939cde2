"""Evaluation reports: summaries equal hand-computed means, files are written, runs compare; CLI."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from app.cli import main as cli
from tests.cli_runner import flat, run_cli
from app.eval.report import write_report
from app.eval.summary import summarize
from app.eval.store import RowData, RunData, RunInfo

PNG = b"\x89PNG\r\n\x1a\n"


def _info(run_id: int = 1, name: str = "r1", dataset: str = "squad", modes=("lloco", "rag", "full")) -> RunInfo:
    return RunInfo(run_id, name, dataset, "/data/dev.json", list(modes), {"top_k": 4, "n_questions": 3,
                   "collection": "eval-squad", "limit": 3}, "tiny", "untrained-k4", None, "done", None,
                   datetime(2025, 1, 1, 12, 0), datetime(2025, 1, 1, 12, 5))


def _row(qid: str, mode: str, em: float, f1: float, tokens: int, ttft: float, total: float, **kw) -> RowData:
    kw.setdefault("context_tokens", tokens - 30)  # 30 tokens of template, instruction and question
    return RowData(qid, "doc", mode, f"question {qid}", ["ref"], prediction="x", score={"em": em, "f1": f1},
                   prompt_tokens=tokens, chunk_ids=[1], retrieval_s=0.01, ttft_s=ttft, total_s=total, **kw)


@pytest.fixture
def squad_run() -> RunData:
    rows = [
        _row("q1", "lloco", 1.0, 1.0, 40, 0.10, 0.50), _row("q2", "lloco", 0.0, 0.5, 60, 0.30, 1.50),
        _row("q1", "rag", 1.0, 1.0, 400, 0.40, 1.00), _row("q2", "rag", 1.0, 0.8, 600, 0.60, 2.00),
        _row("q1", "full", 0.0, 0.2, 1000, 1.00, 3.00), _row("q2", "full", 1.0, 1.0, 3000, 3.00, 5.00),
        RowData("q3", "doc", "lloco", "question q3", ["ref"], status="failed", error="document doc failed to ingest"),
        RowData("q3", "doc", "rag", "question q3", ["ref"], status="failed", error="document doc failed to ingest"),
        RowData("q3", "doc", "full", "question q3", ["ref"], status="failed", error="document doc failed to ingest"),
    ]
    return RunData(_info(), rows)


def test_summary_equals_hand_computed_means(squad_run):
    s = summarize(squad_run)
    assert s.n_questions == 3 and s.n_planned == 3 and s.metric_names == ["em", "f1", "recall"] and s.primary == "f1"
    lloco, rag, full = s.modes
    assert (lloco.mode, lloco.n_ok, lloco.n_failed) == ("lloco", 2, 1)
    assert lloco.metrics == {"em": 0.5, "f1": 0.75, "recall": None}  # rows scored before recall existed
    assert rag.metrics["f1"] == pytest.approx(0.9) and full.metrics["em"] == 0.5
    assert (lloco.prompt_tokens, rag.prompt_tokens, full.prompt_tokens) == (50, 500, 2000)
    assert (lloco.context_tokens, rag.context_tokens, full.context_tokens) == (20, 470, 1970)
    assert lloco.ttft_s == pytest.approx(0.2) and lloco.total_s == pytest.approx(1.0)
    assert lloco.questions_per_min == pytest.approx(60 * 2 / 2.0)  # 2 answers in 2 s of answering
    assert full.questions_per_min == pytest.approx(60 * 2 / 8.0)
    assert s.ratios["lloco/rag"] == pytest.approx({"prompt_tokens": 0.1, "context_tokens": 20 / 470, "ttft_s": 0.4,
                                                   "total_s": 2 / 3, "questions_per_min": 1.5})
    assert s.ratios["lloco/full"] == pytest.approx({"prompt_tokens": 0.025, "context_tokens": 20 / 1970,
                                                    "ttft_s": 0.1, "total_s": 0.25, "questions_per_min": 4.0})


def test_rows_from_before_context_counting_leave_it_out():
    # rows written before migration 0004 have no context count: no mean and no ratio, not zero
    old = RunData(_info(modes=("lloco", "rag")), [_row("q1", "lloco", 1, 1, 40, 0.1, 0.5, context_tokens=None),
                                                 _row("q1", "rag", 1, 1, 400, 0.4, 1.0, context_tokens=None)])
    s = summarize(old)
    assert s.mode("lloco").context_tokens is None and s.ratios["lloco/rag"]["context_tokens"] is None
    assert s.ratios["lloco/rag"]["prompt_tokens"] == pytest.approx(0.1)


def test_report_files_and_comparison(squad_run, tmp_path):
    better = RunData(_info(2, "r2", modes=("lloco", "rag")), [_row("q1", "lloco", 1.0, 1.0, 40, 0.1, 0.4), _row("q2", "lloco", 1.0, 1.0, 40, 0.1, 0.6),
                                      _row("q1", "rag", 0.0, 0.0, 300, 0.2, 0.5)])
    files = write_report(squad_run, tmp_path / "out", vs=better)
    assert set(files) == {"markdown", "json", "quality", "prompt_tokens", "latency", "vs"}
    for name in ("quality", "prompt_tokens", "latency", "vs"):
        data = files[name].read_bytes()
        assert files[name].suffix == ".png" and len(data) > 1000 and data.startswith(PNG)
    md = files["markdown"].read_text()
    assert "| lloco | 2 | 1 | 0.500 | 0.750 | - | 50.0 | 20.0 | 0.200 | 1.000 | 60.0 |" in md  # no recall on these rows
    assert "| lloco/rag | 0.100 | 0.043 | 0.400 | 0.667 |" in md
    assert "3 of 3 questions" in md and "Failed rows (3)" in md and "![latency](latency.png)" in md
    assert "Compared with run r2 (#2)" in md
    data = json.loads(files["json"].read_text())
    assert data["summary"]["modes"][0]["metrics"] == {"em": 0.5, "f1": 0.75, "recall": None}
    # paired by question, against rag in the run and against the other run
    paired = {(d["a"], d["metric"]): d for d in data["summary"]["paired"]}
    f1 = paired["lloco", "f1"]
    assert (f1["b"], f1["n"], f1["wins"], f1["losses"], f1["ties"]) == ("rag", 2, 0, 1, 1)
    assert f1["diff"] == pytest.approx(-0.15) and f1["verdict"] == "tie" and f1["low"] <= f1["diff"] <= f1["high"]
    assert ("full", "em") in paired and ("lloco", "recall") not in paired
    across = {(d["a"], d["metric"]): d for d in data["vs"]["paired"]}
    assert across["lloco @ r1", "f1"]["b"] == "lloco @ r2" and across["lloco @ r1", "f1"]["diff"] == pytest.approx(-0.25)
    assert across["rag @ r1", "em"]["n"] == 1
    assert "Paired differences against RAG" in md and "bootstrap" in md
    assert len(data["rows"]) == 9 and data["summary"]["ratios"]["lloco/full"]["prompt_tokens"] == 0.025
    diff = data["vs"]["difference"]
    assert set(diff) == {"lloco", "rag"}  # full mode is not in the other run
    assert diff["lloco"]["f1"] == pytest.approx(-0.25) and diff["lloco"]["prompt_tokens"] == pytest.approx(10.0)
    assert diff["rag"]["em"] == pytest.approx(1.0)


def test_needle_run_gets_a_heatmap(tmp_path):
    rows = [RowData(f"n-{n}-{d}", "doc", mode, "q", ["1234567"], score={"match": float(d < 0.5 or mode == "full")},
                    details={"context_chars": n, "depth": d}, prompt_tokens=10, ttft_s=0.1, total_s=0.2)
            for n in (2000, 8000) for d in (0.0, 0.5, 1.0) for mode in ("lloco", "full")]
    run = RunData(_info(dataset="needle", modes=("lloco", "full")), rows)
    files = write_report(run, tmp_path)
    assert files["needle_heatmap"].read_bytes().startswith(PNG)
    assert summarize(run).mode("lloco").metrics["match"] == pytest.approx(2 / 6)


def test_report_of_a_run_with_no_answers(tmp_path):
    rows = [RowData("q1", "doc", "rag", "q", ["r"], status="failed", error="boom")]
    files = write_report(RunData(_info(modes=("rag",)), rows), tmp_path)
    assert files["latency"].stat().st_size > 0 and "| rag | 0 | 1 | - | - |" in files["markdown"].read_text()


# ----------------------------------------------------------------------------------------- CLI

def test_cli_run_report_list(monkeypatch, capsys, service, tmp_path):
    from tests.test_eval_runner import BEES, BEE_QS, LAMP_QS, LIGHTHOUSE, write_quality

    monkeypatch.setattr(cli.State, "service", service)
    path = write_quality(tmp_path / "q.jsonl", (LIGHTHOUSE, LAMP_QS), (BEES, BEE_QS))
    code, out, err = run_cli(monkeypatch, capsys, "eval", "run", "--dataset", "quality", "--path", str(path),
                             "--modes", "lloco,rag", "--limit", "2", "--top-k", "2", "--run-name", "first")
    assert code == 0, err
    assert "2 of 2 questions" in flat(out) and "lloco/rag" in flat(out) and "report: lloco eval report 1" in flat(out)
    code, out, err = run_cli(monkeypatch, capsys, "eval", "run", "--resume", "first", "--limit", "3")
    assert code == 0, err
    from app.eval.runner import load_run

    run = load_run(service, "first")
    assert len(run.rows) == 6 and run.info.settings["limit"] == 3 and run.info.modes == ["lloco", "rag"]
    code, out, err = run_cli(monkeypatch, capsys, "eval", "run", "--dataset", "quality", "--path", str(path),
                             "--modes", "rag", "--top-k", "2", "--run-name", "second")
    assert code == 0, err
    code, out, err = run_cli(monkeypatch, capsys, "eval", "report", "first", "--vs", "second", "--out", str(tmp_path / "rep"))
    assert code == 0, err
    assert (tmp_path / "rep" / "report.md").is_file() and (tmp_path / "rep" / "vs.png").stat().st_size > 0
    # the printed table shows the means of the stored rows
    summary = summarize(run)
    lloco = summary.mode("lloco")
    assert f"{lloco.prompt_tokens:.1f}" in flat(out) and "first minus second" in flat(out)
    assert "first minus second, paired by question" in flat(out)  # the paired table against the other run
    code, out, err = run_cli(monkeypatch, capsys, "eval", "report", "first", "--vs", "second", "--json",
                             "--out", str(tmp_path / "rep2"))
    assert code == 0, err
    report = json.loads(out)
    assert {(d["a"], d["b"]) for d in report["summary"]["paired"]} == {("lloco", "rag")}
    assert {d["metric"] for d in report["summary"]["paired"]} == {"accuracy", "option_ll_accuracy", "option_ll_norm_accuracy"}
    assert all(d["n"] == 3 and d["wins"] + d["losses"] + d["ties"] == 3 for d in report["summary"]["paired"])
    assert {(d["a"], d["b"]) for d in report["vs"]["paired"]} == {("rag @ first", "rag @ second")}
    assert report["files"]["markdown"].endswith("report.md") and "rows" not in report
    code, out, err = run_cli(monkeypatch, capsys, "eval", "list")
    assert code == 0 and "first" in flat(out) and "second" in flat(out) and "accuracy" in flat(out)
    code, out, err = run_cli(monkeypatch, capsys, "eval", "list", "--json")
    listed = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and set(listed) == {"first", "second"} and listed["first"]["metric"] == "accuracy"
    assert listed["first"]["modes"]["lloco"]["metrics"]["accuracy"] == pytest.approx(lloco.metrics["accuracy"])
    assert listed["first"]["modes"]["lloco"]["n_ok"] == lloco.n_ok and listed["first"]["questions"] == 3


@pytest.mark.parametrize("args, message", [
    (["--dataset", "quality", "--path", "missing.jsonl"], "missing.jsonl: file not found"),
    (["--dataset", "trivia", "--path", "x"], "unknown dataset 'trivia'"),
    (["--dataset", "quality", "--path", "x", "--modes", "lloco,magic"], "unknown mode 'magic'"),
    (["--dataset", "quality", "--path", "x", "--limit", "0"], "--limit must be at least 1"),
    (["--dataset", "quality", "--path", "x", "--top-k", "0"], "--top-k must be between 1 and 100"),
    (["--resume", "404"], "no evaluation run '404'"),
])
def test_cli_bad_input_exits_2(monkeypatch, capsys, service, args, message):
    monkeypatch.setattr(cli.State, "service", service)
    code, out, err = run_cli(monkeypatch, capsys, "eval", "run", *args)
    assert code == 2 and message in " ".join(err.split()), err


def test_cli_malformed_dataset_names_file_and_line(monkeypatch, capsys, service, tmp_path):
    monkeypatch.setattr(cli.State, "service", service)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "text", "instructions": ["q?"], "outputs": ["(A) x"]}\n')
    code, out, err = run_cli(monkeypatch, capsys, "eval", "run", "--dataset", "quality", "--path", str(bad))
    assert code == 2 and "bad.jsonl, line 1" in flat(err) and "options" in flat(err)
    code, out, err = run_cli(monkeypatch, capsys, "eval", "run", "--dataset", "quality")
    assert code == 2 and "--path" in flat(err)
