"""The Evaluation page (AppTest, tiny model): start a small run from a dataset path as a
background job, list runs with their headline metrics, open one (table, ratios, plots, rows)."""

from __future__ import annotations

from app.eval.runner import EvalSpec, run_eval
from tests.test_eval_runner import LAMP_QS, LIGHTHOUSE, write_quality


def _evaluation_script():
    from app.web.evaluation import evaluation_page

    evaluation_page()


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_function(_evaluation_script, default_timeout=120)


def _data_dir(service):
    """A folder under the service's home, which is always a server root the page may read from."""
    folder = service.settings.home / "data"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_no_runs_yet_and_the_default_path_points_at_shared_eval_data(web_service):
    from app.web.evaluation import EVAL_DATA

    at = _app().run()
    assert not at.exception and "No evaluation run yet" in at.info[0].value
    assert at.text_input[0].value == str(EVAL_DATA / "quality" / "quality.jsonl")
    assert EVAL_DATA.parts[-2:] == ("shared", "eval-data")
    at.selectbox[0].set_value("hotpotqa").run()
    assert at.text_input[0].value.endswith("hotpotqa/hotpot_dev_sample50.json")


def test_start_a_run_with_progress_then_open_it(web_service, tmp_path):
    from app.web.common import get_jobs

    data = write_quality(_data_dir(web_service) / "quality.jsonl", (LIGHTHOUSE, LAMP_QS))  # under a server root
    at = _app().run()
    at.text_input[0].set_value(str(data))
    at.number_input[0].set_value(2)  # questions
    at.number_input[1].set_value(2)  # top-k
    at.text_input[1].set_value("web-run")
    next(b for b in at.button if b.label == "Start the run").click().run()
    assert not at.exception
    [job] = get_jobs().jobs(kind="eval")
    assert job.wait(300) and job.status == "done", job.error
    at.run()
    assert not at.exception
    runs = at.dataframe[0].value
    assert runs["name"].tolist() == ["web-run"] and runs["status"].tolist() == ["done"]
    assert runs["metric"].tolist() == ["accuracy"] and runs.loc[0, "lloco"].endswith("(n=2)")
    assert runs.loc[0, "full"] == ""  # modes: lloco, lloco-pure and rag (the default)
    assert at.selectbox(key="eval-open").value == job.result
    table = at.dataframe[1].value
    assert table["mode"].tolist() == ["lloco", "lloco-pure", "rag"] and table["ok"].tolist() == ["2", "2", "2"]
    ratios = at.dataframe[2].value
    assert ratios["ratio"].tolist() == ["lloco/rag", "lloco-pure/rag"] and float(ratios.loc[0, "prompt tokens"]) < 1
    paired = at.dataframe[3].value  # each LLoCO mode against rag, per metric, with its interval
    assert set(zip(paired["a"], paired["metric"])) == {(m, k) for m in ("lloco", "lloco-pure") for k in
                                                       ("accuracy", "option_ll_accuracy", "option_ll_norm_accuracy")}
    assert set(paired["b"]) == {"rag"} and set(paired["n"]) == {"2"}
    assert set(paired["verdict"]) <= {"better", "worse", "tie"}
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert sorted(captions) == ["latency", "prompt tokens", "quality", "risk coverage"]  # two columns; issue 23
    assert (web_service.settings.home / "eval-reports" / "web-run" / "quality.png").is_file()
    rows = at.dataframe[4].value
    assert len(rows) == 6 and set(rows["mode"]) == {"lloco", "lloco-pure", "rag"}
    assert rows["references"].str.startswith("(").all()
    at.multiselect(key=f"eval-rows-modes-{job.result}").set_value(["rag"]).run()
    assert set(at.dataframe[4].value["mode"]) == {"rag"}


def test_a_path_outside_the_server_roots_is_refused_on_the_page(web_service, tmp_path):
    from app.web.common import get_jobs

    data = write_quality(tmp_path / "quality.jsonl", (LIGHTHOUSE, LAMP_QS))
    at = _app().run()
    at.text_input[0].set_value(str(data))
    next(b for b in at.button if b.label == "Start the run").click().run()
    assert not at.exception and "must be under a configured server root" in at.error[0].value
    assert get_jobs().jobs(kind="eval") == []  # nothing started


def test_a_failed_run_shows_its_reason(web_service, tmp_path):
    from app.web.common import get_jobs

    at = _app().run()
    at.text_input[0].set_value(str(_data_dir(web_service) / "missing.jsonl"))
    next(b for b in at.button if b.label == "Start the run").click().run()
    [job] = get_jobs().jobs(kind="eval")  # a fresh runner per test (the fixture clears the caches)
    assert job.wait(60) and job.status == "failed"
    at.run()
    assert not at.exception
    assert any("missing.jsonl" in e.value and "not found" in e.value for e in at.error), [e.value for e in at.error]


def test_runs_made_elsewhere_are_listed(web_service, tmp_path):
    data = write_quality(tmp_path / "q.jsonl", (LIGHTHOUSE, LAMP_QS))
    run_eval(web_service, EvalSpec("quality", str(data), modes=("rag",), limit=1, top_k=2, run_name="cli-run"))
    at = _app().run()
    assert not at.exception and at.dataframe[0].value["name"].tolist() == ["cli-run"]
    assert "Start a run" in [e.label for e in at.expander]
