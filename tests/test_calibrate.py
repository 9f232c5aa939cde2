"""A collection's thresholds chosen on its own synthetic questions (issue 23): `lloco collections
calibrate` stores them per mode, answers are then declined or marked by them, the abstain setting
turns that off, and bad input is refused with nothing stored."""

from __future__ import annotations

import json
import random

import pytest

from app.core.confidence import thresholds_from_json
from model.errors import InvalidInputError
from tests.cli_runner import flat, run_cli
from tests.fakes import text_collection

FACTS = ("The Eddystone lighthouse was completed in 1759 by John Smeaton near Plymouth. "
         "Its granite tower stood for 123 years before erosion of the rock forced its removal. "
         "The fourth tower, designed by James Douglass, was lit in 1882 and still stands today. ")


@pytest.fixture
def lights(service, tmp_path):
    return text_collection(service, tmp_path, "lights", FACTS * 8)


def test_calibration_stores_each_modes_thresholds_and_answers_follow_them(lights, monkeypatch, capsys):
    import app.training.calibrate as calibrate

    seen = []
    monkeypatch.setattr(calibrate, "answer_recall", lambda text, refs: seen.append(refs) or 0.0)  # every answer wrong
    code, out, err = run_cli(monkeypatch, capsys, "collections", "calibrate", "lights", "--questions", "12",
                             "--modes", "lloco,rag", "--json", service=lights)
    assert code == 0, err
    results = json.loads(out)
    assert [r["mode"] for r in results] == ["lloco", "rag"] and all(r["thresholds"]["n"] == 12 for r in results)
    assert len(seen) == 24 and all(len(refs) == 1 and refs[0] in FACTS for refs in seen)  # the blanked words
    stored = thresholds_from_json(lights.collection_row("lights").thresholds)
    assert set(stored) == {"lloco", "rag"}
    assert all(t.supported > 1 and t.coverage == 0 for t in stored.values())  # all wrong: nothing marked, all declined
    answer = lights.ask("lights", "When was the Eddystone lighthouse completed?", mode="lloco").read()
    assert answer.verification.level == "declined" and answer.text  # the text stays, shown as declined
    lights.settings.abstain = False  # off: shown with its claims' verdicts, never declined
    again = lights.ask("lights", "When was the Eddystone lighthouse completed?", mode="lloco").read()
    assert again.verification.level in {"answered", "supported"}


def test_a_mode_calibrated_again_keeps_the_others(lights, monkeypatch):
    import app.training.calibrate as calibrate

    monkeypatch.setattr(calibrate, "answer_recall", lambda text, refs: 0.0)
    calibrate.calibrate_collection(lights, "lights", modes=("lloco", "rag"), questions=10)
    monkeypatch.setattr(calibrate, "answer_recall", lambda text, refs: 1.0)  # now every answer right
    (result,) = calibrate.calibrate_collection(lights, "lights", modes=("rag",), questions=10, foreign=0)
    assert result.answer_recall == 1.0 and result.auroc is None and result.thresholds.decline == 0.0
    stored = thresholds_from_json(lights.collection_row("lights").thresholds)
    assert stored["rag"] == result.thresholds and stored["lloco"].coverage == 0


def test_bad_calibration_requests_are_refused_and_store_nothing(lights, tmp_path, monkeypatch, capsys):
    from app.training.calibrate import calibrate_collection

    with pytest.raises(InvalidInputError, match="between 10 and 2000"):
        calibrate_collection(lights, "lights", questions=5)
    with pytest.raises(InvalidInputError, match="--foreign must be between 0 and 4"):
        calibrate_collection(lights, "lights", foreign=-1)
    short = tmp_path / "short.txt"
    short.write_text("Too short to ask about.")
    lights.create_collection("tiny")
    lights.ingest("tiny", [short])
    with pytest.raises(InvalidInputError, match="synthetic questions"):
        calibrate_collection(lights, "tiny", questions=10)
    code, _, err = run_cli(monkeypatch, capsys, "collections", "calibrate", "lights", "--modes", "magic", service=lights)
    assert code == 2 and "unknown mode 'magic'" in flat(err)
    code, _, err = run_cli(monkeypatch, capsys, "collections", "calibrate", "nope", service=lights)
    assert code == 2 and "no collection named 'nope'" in flat(err)
    assert lights.collection_row("lights").thresholds is None and lights.collection_row("tiny").thresholds is None


def test_a_rebuild_recalibrates_a_calibrated_collection_and_only_that(lights, monkeypatch, capsys):
    import app.training.calibrate as calibrate

    monkeypatch.setattr(calibrate, "answer_recall", lambda text, refs: 0.0)
    assert calibrate.recalibrate(lights, "lights") == []  # never calibrated: nothing to redo
    calibrate.calibrate_collection(lights, "lights", modes=("rag",), questions=11)
    monkeypatch.setattr(calibrate, "answer_recall", lambda text, refs: 1.0)
    code, out, err = run_cli(monkeypatch, capsys, "collections", "rebuild", "lights", service=lights)
    assert code == 0, err
    assert "recalibrated the answer thresholds of lights" in flat(out)
    stored = thresholds_from_json(lights.collection_row("lights").thresholds)
    assert set(stored) == {"rag"} and stored["rag"].n == 11 and stored["rag"].decline == 0.0  # chosen again


def test_questions_from_text_the_collection_does_not_hold_count_as_wrong_and_are_reported(lights, tmp_path,
                                                                                          monkeypatch):
    """Foreign cloze questions (the home's other collections; documents this one also holds left out,
    the demo documents when there is no other) are asked too, count as wrong whatever is answered, and
    their declined share is stored with the thresholds."""
    import app.training.calibrate as calibrate

    assert "honeybee" in " ".join(calibrate.foreign_texts(lights, "lights", random.Random(0))).lower()  # alone: the demo's pages
    other = text_collection(lights, tmp_path, "tides", "The Bay of Fundy has tides of 16 metres twice a day. " * 30)
    lights.create_collection("twin")
    lights.ingest("twin", [tmp_path / "lights.txt"])  # the document lights holds
    texts = calibrate.foreign_texts(other, "lights", random.Random(0))
    assert texts and all("Fundy" in t for t in texts)  # tides' chunks; twin holds lights' document: left out
    asked = []
    monkeypatch.setattr(calibrate, "answer_recall", lambda text, refs: asked.append(refs) or 1.0)  # own: all right
    (result,) = calibrate.calibrate_collection(lights, "lights", modes=("lloco",), questions=10, foreign=1.0)
    t = result.thresholds
    assert len(asked) == 10 and t.n == 10  # recall is asked of the own questions only
    assert result.answer_recall == 1.0 and result.auroc is not None  # foreign ones are the wrong answers
    assert t.foreign_declined is not None and 0.0 <= t.foreign_declined <= 1.0
    stored = thresholds_from_json(lights.collection_row("lights").thresholds)
    assert stored["lloco"].foreign_declined == t.foreign_declined
