"""Paired differences with bootstrap intervals: the statistics every quality claim carries."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from app.eval.stats import bootstrap_interval, mode_differences, paired_diff, run_differences
from app.eval.store import RowData, RunData, RunInfo


def test_bootstrap_interval_of_a_known_case():
    # 100 questions, a wins half of them by 1 point: mean 0.5, standard error 0.05
    diffs = [1.0] * 50 + [0.0] * 50
    low, high = bootstrap_interval(diffs)
    assert low == pytest.approx(0.5 - 1.96 * 0.05, abs=0.015) and high == pytest.approx(0.5 + 1.96 * 0.05, abs=0.015)
    assert bootstrap_interval(diffs) == (low, high)  # seeded
    assert bootstrap_interval([0.25] * 30) == pytest.approx((0.25, 0.25))  # no spread, no width


def test_bootstrap_interval_refuses_nonsense():
    with pytest.raises(ValueError, match="no differences"):
        bootstrap_interval([])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_interval([1.0], confidence=1.5)


def test_paired_diff_counts_wins_and_gives_a_verdict():
    a = {f"q{i}": 1.0 for i in range(40)}
    b = {f"q{i}": (1.0 if i < 10 else 0.0) for i in range(40)} | {"only-b": 1.0}
    d = paired_diff("recall", a, b, a_label="lloco", b_label="rag")
    assert (d.n, d.wins, d.losses, d.ties) == (40, 30, 0, 10)  # "only-b" is not paired
    assert d.diff == pytest.approx(0.75) and d.low > 0 and d.verdict == "better"
    flip = paired_diff("recall", b, a, a_label="rag", b_label="lloco")
    assert flip.verdict == "worse" and flip.diff == pytest.approx(-0.75)
    noisy = paired_diff("f1", {"1": 1.0, "2": 0.0, "3": 1.0, "4": 0.0}, {"1": 0.0, "2": 1.0, "3": 1.0, "4": 0.0},
                        a_label="a", b_label="b")
    assert noisy.diff == 0 and noisy.verdict == "tie" and noisy.low < 0 < noisy.high
    assert paired_diff("f1", {"x": 1.0}, {"y": 1.0}, a_label="a", b_label="b") is None


def _run(name: str, scores: dict[str, dict[str, float]], failed: set[tuple[str, str]] = frozenset()) -> RunData:
    """A run whose rows score each (mode -> {qid: recall})."""
    info = RunInfo(1, name, "hotpotqa", "p", list(scores), {}, "d", "c", None, "done", None, datetime(2026, 1, 1), None)
    rows = [RowData(qid, "doc", mode, "q?", ["a"], status="failed" if (qid, mode) in failed else "ok",
                    score={} if (qid, mode) in failed else {"recall": value, "f1": value / 2})
            for mode, by_q in scores.items() for qid, value in by_q.items()]
    return RunData(info, rows)


def test_mode_differences_pair_every_mode_with_rag_on_shared_questions():
    run = _run("r", {"lloco": {"1": 1.0, "2": 1.0, "3": 0.0}, "lloco-pure": {"1": 0.0, "2": 0.0, "3": 0.0},
                     "rag": {"1": 0.0, "2": 1.0, "3": 0.0}}, failed={("3", "lloco")})
    diffs = {(d.a, d.metric): d for d in mode_differences(run, ["f1", "recall"])}
    assert set(diffs) == {("lloco", "f1"), ("lloco", "recall"), ("lloco-pure", "f1"), ("lloco-pure", "recall")}
    assert diffs["lloco", "recall"].n == 2 and diffs["lloco", "recall"].wins == 1  # the failed row is not paired
    assert diffs["lloco-pure", "recall"].losses == 1 and diffs["lloco-pure", "recall"].n == 3
    assert mode_differences(_run("x", {"lloco": {"1": 1.0}}), ["recall"]) == []  # no rag, nothing to pair


def test_run_differences_pair_the_same_mode_or_two_single_mode_runs():
    one = _run("one", {"lloco": {"1": 1.0, "2": 1.0}})
    two = _run("two", {"lloco": {"1": 0.0, "2": 1.0}})
    (d,) = run_differences(one, two, ["recall"])
    assert (d.a, d.b, d.wins, d.ties) == ("lloco @ one", "lloco @ two", 1, 1)
    rag = _run("rag-only", {"rag": {"1": 0.0, "2": 0.0}})
    (d,) = run_differences(one, rag, ["recall"])
    assert d.b == "rag @ rag-only" and d.diff == 1.0 and math.isclose(d.low, 1.0)
