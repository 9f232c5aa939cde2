"""Selective answering in evaluation reports (issue 23): AUROC of the stored confidence, coverage and
accuracy of the answered and the supported, the risk-coverage curve, re-scoring with another model
and thresholds, and the report's section and plot."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.core.confidence import FEATURES, ConfidenceModel, Thresholds
from app.eval.selective import selective
from app.eval.store import RowData, RunData, RunInfo


def _run(rows: list[tuple[str, float, str, float, float]]) -> RunData:
    """(mode, confidence, level, recall, verbatim signal) per question."""
    info = RunInfo(1, "sel", "narrativeqa", "p", ["rag", "lloco"], {}, "d", "c", None, "done", None,
                   datetime(2026, 12, 7), None)
    out = []
    for i, (mode, conf, shown, recall, verbatim) in enumerate(rows):
        v = {"verdict": "supported" if shown == "supported" else "partly", "confidence": conf, "level": shown,
             "signals": {"verbatim": verbatim, "claims": 1.0}}
        out.append(RowData(f"q{i // 2}", "d", mode, "q?", ["x"], score={"f1": recall, "recall": recall},
                           details={"verification": v}))
    out.append(RowData("old", "d", "rag", "q?", ["x"], score={"recall": 1.0}))  # before issue 23: no verification
    return RunData(info, out)


ROWS = [("lloco", 0.9, "supported", 1.0, 1.0), ("rag", 0.8, "answered", 1.0, 0.0),
        ("lloco", 0.7, "answered", 1.0, 1.0), ("rag", 0.6, "answered", 0.0, 1.0),
        ("lloco", 0.2, "answered", 0.0, 0.0), ("rag", 0.4, "answered", 1.0, 0.0),
        ("lloco", 0.1, "declined", 0.0, 0.0), ("rag", 0.1, "declined", 0.0, 1.0)]


def test_selective_figures_per_mode():
    lloco, rag = sorted(selective(_run(ROWS), ["f1", "recall"]), key=lambda s: s.mode)
    assert lloco.mode == "lloco" and lloco.metric == "recall" and lloco.n == 4 and rag.n == 4  # the old row: left out
    assert lloco.auroc == 1.0 and rag.auroc == pytest.approx(0.75)
    assert lloco.accuracy == 0.5 and lloco.coverage == 0.75 and lloco.answered_accuracy == pytest.approx(2 / 3)
    assert lloco.supported_share == 0.25 and lloco.supported_accuracy == 1.0
    assert rag.supported_share == 0 and rag.supported_accuracy is None
    assert lloco.curve == [(0.25, 1.0), (0.5, 1.0), (0.75, pytest.approx(2 / 3)), (1.0, 0.5)]


def test_stored_signals_rescored_with_another_model_and_thresholds():
    only_verbatim = ConfidenceModel(tuple(4.0 if f == "verbatim" else 0.0 for f in FEATURES), 0.0,
                                    (0.5,) * len(FEATURES), (0.5,) * len(FEATURES))
    t = Thresholds(decline=0.5, supported=0.9, precision=1.0, coverage=0.5, n=10)
    lloco, rag = sorted(selective(_run(ROWS), ["recall"], models={"lloco": only_verbatim, "rag": only_verbatim},
                                  thresholds={"lloco": t}), key=lambda s: s.mode)
    assert lloco.auroc == 1.0 and rag.auroc == 0.0  # verbatim: the right lloco answers, the wrong rag ones
    assert lloco.coverage == 0.5 and lloco.supported_share == 0.25  # verbatim ones pass 0.5; one is "supported"
    assert rag.coverage == 1.0 and rag.supported_share == 0  # no thresholds for rag: nothing declined, none marked


def test_the_report_has_a_selective_section_and_a_risk_coverage_plot(tmp_path):
    import json

    from app.eval.report import write_report

    files = write_report(_run(ROWS), tmp_path)
    md = files["markdown"].read_text()
    assert "## Selective answering" in md and "risk_coverage.png" in md and files["risk_coverage"].is_file()
    data = json.loads(files["json"].read_text())
    assert {s["mode"]: s["auroc"] for s in data["selective"]} == {"rag": 0.75, "lloco": 1.0}


def test_unanswerable_questions_are_counted_apart(tmp_path):
    rows = [("lloco", 0.9, "answered", 1.0, 1.0), ("lloco", 0.8, "answered", 0.0, 1.0),  # answerable
            ("lloco", 0.6, "answered", 0.0, 0.0), ("lloco", 0.1, "declined", 1.0, 0.0),  # unanswerable
            ("lloco", 0.05, "declined", 1.0, 0.0)]
    run = _run([(*r[:4], r[4]) for r in rows])
    for i, row in enumerate(run.rows[:5]):
        row.references = ["x"] if i < 2 else []  # SQuAD 2.0 stores no reference for a question without an answer
    (lloco,) = selective(run, ["recall"])
    a = lloco.abstention
    assert (a.answerable, a.unanswerable) == (2, 3)
    assert a.declined_answerable == 0 and a.declined_unanswerable == pytest.approx(2 / 3)
    assert a.auroc == 1.0  # every answerable question is more confident than every unanswerable one
    assert selective(_run(ROWS), ["recall"])[0].abstention is None  # a set without such questions: no split

    import json

    from app.eval.report import write_report

    files = write_report(run, tmp_path)
    assert "declined (unanswerable)" in files["markdown"].read_text()
    (figure,) = json.loads(files["json"].read_text())["selective"]
    assert figure["abstention"]["declined_unanswerable"] == pytest.approx(2 / 3)
