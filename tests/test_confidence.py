"""The calibrated confidence and the per-collection thresholds (issue 23): the combiner, its fit,
AUROC, the thresholds' choice on a scripted set, and the level an answer is shown at."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.core.confidence import (FEATURES, PRIOR, Thresholds, auroc, choose_thresholds, features,
                                 fit_confidence, level, load_models, save_models, thresholds_from_json,
                                 thresholds_json)


def _signals(right: bool, rng: random.Random) -> dict[str, float]:
    """A scripted answer: right ones are found in their sources and the decoder was surer of them."""
    return {"claims": 1.0, "supported_share": float(rng.random() < (0.8 if right else 0.3)),
            "verbatim": float(rng.random() < 0.5), "top_score": rng.uniform(0.4, 0.7),
            "mean_logprob": rng.gauss(-0.4 if right else -1.4, 0.4), "min_logprob": rng.gauss(-2, 1),
            "first_logprob": rng.gauss(-1, 0.5), "capped": 0.0, "tokens": float(rng.randint(2, 10))}


def test_auroc_counts_pairs_and_ties():
    assert auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.3, 0.6, 0.6, 0.2], [True, True, False, False]) == pytest.approx(0.625)
    assert auroc([0.4], [True]) is None


def test_the_fitted_combiner_separates_right_from_wrong_and_weights_what_predicts():
    rng = random.Random(0)
    labels = [rng.random() < 0.3 for _ in range(400)]
    signals = [_signals(y, rng) for y in labels]
    model = fit_confidence(signals[:300], labels[:300], source="scripted")
    held = [model(s) for s in signals[300:]]
    assert auroc(held, labels[300:]) > 0.8 and all(0 < c < 1 for c in held)
    weights = model.contributions()
    assert weights["mean_logprob"] > 1.0 and weights["supported_share"] > 0.3
    noise = ("verbatim", "top_score", "min_logprob", "first_logprob", "log_tokens")  # drawn alike for both kinds
    assert all(abs(weights[k]) < weights["mean_logprob"] / 5 for k in noise)
    assert abs(weights["capped"]) < 1e-6 and abs(weights["no_claim"]) < 1e-6  # constants here: no weight
    with pytest.raises(ValueError, match="some right and some wrong"):
        fit_confidence(signals[:5], [True] * 5)


def test_models_round_trip_and_a_file_of_other_features_is_ignored(tmp_path):
    model = fit_confidence([_signals(y, random.Random(i)) for i, y in enumerate([True, False] * 20)], [True, False] * 20)
    save_models({"lloco": model}, tmp_path / "c.json")
    loaded = load_models(tmp_path / "c.json")["lloco"]
    s = _signals(True, random.Random(9))
    assert loaded(s) == pytest.approx(model(s)) and loaded.n == 40
    (tmp_path / "old.json").write_text('{"features": ["x"], "modes": {}}')
    assert load_models(tmp_path / "old.json") == {} and load_models(tmp_path / "none.json") == {}
    assert len(features({})) == len(FEATURES) and 0 < PRIOR({}) < 1


def test_a_model_fitted_before_a_feature_was_added_loads_with_it_weighted_zero(tmp_path):
    """The shipped file is fitted on the features of its day; a later feature must not discard it."""
    import json

    old = [f for f in FEATURES if not f.startswith("question_")]
    model = {"weights": [0.5] * len(old), "bias": -0.2, "mean": [0.1] * len(old), "scale": [2.0] * len(old)}
    (tmp_path / "c.json").write_text(json.dumps({"features": old, "modes": {"lloco": model}}))
    loaded = load_models(tmp_path / "c.json")["lloco"]
    w = loaded.contributions()
    assert w["question_names"] == 0.0 and w["question_words"] == 0.0 and w["verbatim"] == 0.5
    s = {"verbatim": 1.0, "question_names": 0.0}
    assert loaded(s) == pytest.approx(loaded({"verbatim": 1.0, "question_names": 1.0, "question_words": 1.0}))
    shipped = load_models(Path(__file__).resolve().parents[1] / "model/shipped/smollm2-135m/confidence.json")
    assert set(shipped) == {"lloco", "rag"}  # the shipped models load with this version's features


def test_thresholds_on_a_scripted_set():
    # confidences 0.05, 0.10 .. 0.95 (i = 0 .. 18): answers 0-5 wrong, 6-12 right when i is even, 13-18 right
    conf = [0.05 + 0.05 * i for i in range(19)]
    labels = [i >= 13 or (6 <= i and i % 2 == 0) for i in range(19)]
    t = choose_thresholds(conf, labels, supported_precision=0.9, decline_accuracy=0.0)
    assert t.supported == pytest.approx(0.65) and t.precision == 1.0  # from i = 12 on: 7 of 7; from 11: 7 of 8
    assert t.decline == pytest.approx(0.325) and t.coverage == pytest.approx(13 / 19) and t.n == 19  # 0-5 declined
    loose = choose_thresholds(conf, labels, supported_precision=0.9, decline_accuracy=0.2)
    assert loose.decline == pytest.approx(0.525)  # 0-9 hold 2 right answers of 10 (20 %); 0-10 hold 3 of 11
    never = choose_thresholds([0.2, 0.4], [False, False], supported_precision=0.5, decline_accuracy=0.0)
    assert never.supported > 1 and never.decline == pytest.approx(0.7)  # nothing marked; all wrong: declined
    lenient = choose_thresholds(conf, labels, supported_precision=0.1, decline_accuracy=0.0)
    assert lenient.supported == conf[0] and lenient.decline == 0.0  # the decline never passes supported


def test_foreign_answers_count_as_wrong_and_are_reported_apart_and_doubt_follows_a_target():
    conf = [0.05 + 0.05 * i for i in range(19)]
    labels = [i >= 13 or (6 <= i and i % 2 == 0) for i in range(19)]
    # four foreign questions answered at low confidence (wrong by construction) and one answered high
    t = choose_thresholds(conf + [0.06, 0.11, 0.16, 0.9], labels + [False] * 4, supported_precision=0.9,
                          decline_accuracy=0.0, foreign=[False] * 19 + [True] * 4, doubt_accuracy=0.75)
    assert t.n == 19 and t.coverage == pytest.approx(13 / 19)  # the own answers' share, as before
    assert t.foreign_declined == pytest.approx(3 / 4)  # 0.9 passes the decline (0.325)
    assert t.doubt == pytest.approx(0.35)  # own answers from i = 6 on: 10 right of 13 (77 %); from 5: 10 of 14
    assert choose_thresholds(conf, labels, supported_precision=0.9, decline_accuracy=0.0).doubt is None
    with pytest.raises(ValueError, match="foreign must mark every answer"):
        choose_thresholds(conf, labels, supported_precision=0.9, decline_accuracy=0.0, foreign=[True])


def test_the_level_an_answer_is_shown_at():
    t = Thresholds(decline=0.2, supported=0.7, precision=0.8, coverage=0.9, n=50)
    assert level(0.1, t, all_found=True) == "declined"
    assert level(0.5, t, all_found=True) == "answered" and level(0.9, t, all_found=False) == "answered"
    assert level(0.9, t, all_found=True) == "supported"
    assert level(0.01, None, all_found=True) == "answered"  # not calibrated: nothing declined, nothing marked
    assert thresholds_from_json(thresholds_json({"lloco": t})) == {"lloco": t} and thresholds_from_json(None) == {}


def test_an_answer_with_nothing_retrieved_is_declined_whatever_its_confidence():
    from app.core.verify import judged, verify_answer

    from tests.fakes import fixed_confidence

    v = judged(verify_answer("14.3%", "q", []), fixed_confidence(5.0), None)
    assert v.level == "declined" and v.confidence > 0.99 and v.summary().startswith("declined")


def test_the_fit_script_writes_models_the_service_loads_and_its_log(tmp_path, monkeypatch, service):
    """bench/fit_confidence.py on scripted synthetic answers: one model per mode, every answer logged."""
    import json

    import app.core.service as service_module
    import app.training.calibrate as calibrate
    from bench import fit_confidence
    from app.training.calibrate import SyntheticAnswer

    rng = random.Random(3)

    def answers(svc, name, *, modes, questions, seed, foreign, progress):
        out = []
        for mode in modes:
            for i in range(questions + round(foreign * questions)):
                right = i < questions and rng.random() < 0.4
                out.append(SyntheticAnswer(mode, _signals(right, rng), 0.5, right, foreign=i >= questions))
        return out

    monkeypatch.setattr(calibrate, "synthetic_answers", answers)
    monkeypatch.setattr(service_module, "LlocoService", lambda settings: service)
    out = tmp_path / "confidence.json"
    assert fit_confidence.main(["eval-a", "eval-b", "--questions", "30", "--out", str(out)]) == 0
    models = load_models(out)
    assert set(models) == {"lloco", "rag"} and models["lloco"].n == 90  # 30 own and 15 foreign per collection
    log = json.loads((tmp_path / "confidence-fit.json").read_text())
    assert log["collections"] == ["eval-a", "eval-b"] and len(log["answers"]) == 180
    assert log["modes"]["lloco"]["foreign"] == 30 and log["foreign"] == 0.5
    assert log["modes"]["rag"]["auroc_in_sample"] > 0.7 and set(log["modes"]["rag"]["weights"]) == set(FEATURES)
    service.settings.confidence_model = str(out)
    assert service.confidence_models()["rag"].n == 90  # what answers are judged with


def test_the_fit_reads_a_stored_run_s_answers(tmp_path):
    """bench/fit_confidence.py --runs: a verified row is an answer labelled by its recall; an
    off-collection run's answers are foreign, so wrong whatever their recall; unverified rows are left out."""
    from app.config import Settings
    from app.eval.store import RowData, create_run, save_row
    from bench.fit_confidence import run_answers
    from indexing.catalog import open_catalog

    sessions = open_catalog(Settings(home=tmp_path).resolved_database_url)
    values = {"dataset": "narrativeqa", "path": "p", "decoder": "d", "compressor": "c", "adapter": None}
    for name, settings in (("own", {}), ("off", {"off_collection": "other"})):
        run_id = create_run(sessions, name=name, values=values, modes=["lloco", "rag"], settings=settings)
        for i, (mode, recall, checked) in enumerate([("lloco", 1.0, True), ("rag", 0.0, True), ("rag", 1.0, False)]):
            v = {"verdict": "partly", "confidence": 0.4, "signals": {"verbatim": 1.0}} if checked else None
            save_row(sessions, run_id, RowData(f"q{i}", "d", mode, "Who?", ["x"], score={"f1": recall, "recall": recall},
                                               details={"verification": v} if v else {}))
    own = [a for _, a in run_answers(f"{tmp_path}:own", ("lloco", "rag"))]
    assert [(a.mode, a.right, a.foreign) for a in own] == [("lloco", True, False), ("rag", False, False)]
    assert own[0].signals["verbatim"] == 1.0 and own[0].confidence == 0.4
    off = [a for _, a in run_answers(f"{tmp_path}:off", ("lloco", "rag"))]
    assert [(a.mode, a.right, a.foreign) for a in off] == [("lloco", False, True), ("rag", False, True)]
