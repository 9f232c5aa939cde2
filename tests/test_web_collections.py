"""The Collections page (AppTest, tiny model): create, list, documents, upload, delete a document,
rebuild, attach/detach an adapter, train one, delete the collection with confirmation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import make_pdf, tiny_lora


def _collections_script():
    from app.web.collections import collections_page

    collections_page()


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_function(_collections_script, default_timeout=120)


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def _finish_jobs(at, kind):
    """Wait for this kind's background jobs, then rerun the page (as its poller would)."""
    from app.web.common import get_jobs

    jobs = get_jobs().jobs(kind=kind)
    assert jobs, f"no {kind} job started"
    assert all(j.wait(120) for j in jobs)
    return at.run()


@pytest.fixture
def lights(web_service, tmp_path):
    web_service.create_collection("lights")
    pdf = make_pdf(tmp_path / "lights.pdf", [
        ("The Pharos lighthouse stood in Alexandria for many centuries. It was built by Sostratus in 280 BC. "
         "Its fire could be seen from far out at sea by the sailors of Egypt. An earthquake damaged it in 1303."),
        ("Augustin Fresnel invented his famous lens in 1822 in France. Keepers trimmed the wicks every single night. "
         "The Eddystone light was rebuilt by John Smeaton in 1759 with granite blocks. Ships from Plymouth passed it.")])
    web_service.ingest("lights", [pdf])
    return web_service


def test_create_lists_and_refuses_bad_names(web_service):
    at = _app().run()
    assert not at.exception and "No collection yet" in at.info[0].value
    at.text_input[0].set_value("papers")
    at.button[0].click().run()
    assert not at.exception and "created papers" in at.success[0].value
    assert at.dataframe[0].value["name"].tolist() == ["papers"]
    assert at.selectbox[0].value == "papers" and [t.label for t in at.tabs] == ["Documents", "Rebuild", "Adapter", "Delete"]
    at.text_input[0].set_value("papers")
    at.button[0].click().run()
    assert "already exists" in at.error[0].value
    at.text_input[0].set_value("bad name!")
    at.button[0].click().run()
    assert "invalid collection name" in at.error[0].value
    assert web_service.list_collections()[0].name == "papers" and len(web_service.list_collections()) == 1
    at.text_input[0].set_value("reports")  # "reports" sorts after "papers": the picker must move to it
    at.button[0].click().run()
    assert not at.exception and at.selectbox(key="admin-collection").value == "reports"
    at.run()  # and it stays there
    assert at.selectbox(key="admin-collection").value == "reports"


def test_documents_upload_and_delete(lights, tmp_path):
    at = _app().run()
    table = at.dataframe[0].value
    assert table.loc[0, "name"] == "lights" and table.loc[0, "documents"] == 1 and table.loc[0, "chunks"] > 0
    docs = at.dataframe[1].value
    assert docs["file"].tolist() == ["lights.pdf"] and docs["status"].tolist() == ["ready"]
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\nTides rise and fall twice a day because of the moon.\n")
    at.file_uploader[0].set_value([("notes.md", notes.read_bytes(), "text/markdown"),
                                   ("photo.pdf", b"\x89PNG\r\n\x1a\n" + bytes(64), "application/pdf")]).run()
    _button(at, "Ingest 2 file(s)").click().run()
    assert not at.exception
    at = _finish_jobs(at, "ingest")
    assert not at.exception
    assert any(s.value.startswith("notes.md: 1 page(s)") for s in at.success), [s.value for s in at.success]
    assert any(e.value.startswith("photo.pdf: not a PDF") for e in at.error), [e.value for e in at.error]
    assert {d.filename: d.status for d in lights.list_documents("lights")} == \
        {"lights.pdf": "ready", "notes.md": "ready", "photo.pdf": "failed"}
    at.selectbox(key="doc-lights").set_value(next(d for d in lights.list_documents("lights") if d.filename == "notes.md"))
    _button(at, "Delete document").click().run()
    assert not at.exception
    assert [d.filename for d in lights.list_documents("lights")] == ["lights.pdf", "photo.pdf"]


def test_rebuild_runs_in_the_background(lights):
    at = _app().run()
    chunks = lights.get_collection("lights").n_chunks
    _button(at, "Rebuild the index").click().run()
    assert not at.exception
    at = _finish_jobs(at, "rebuild")
    assert not at.exception
    assert any(s.value.startswith("rebuild lights: done") for s in at.success)
    assert any(c.value == f"1 documents, {chunks} chunks" for c in at.caption)


def test_attach_and_detach_an_adapter(lights, tmp_path):
    at = _app().run()
    at.text_input(key="adapter-path-lights").set_value(str(tmp_path / "elsewhere")).run()
    _button(at, "Attach").click().run()  # outside the server roots: refused whether or not it exists
    assert "must be under a configured server root" in at.error[0].value
    home = lights.settings.home  # always a server root
    at.text_input(key="adapter-path-lights").set_value(str(home / "nowhere")).run()
    _button(at, "Attach").click().run()
    assert "not a LoRA adapter folder" in at.error[0].value
    folder = tiny_lora(home / "lora", Path(lights.decoder.folder))
    at.text_input(key="adapter-path-lights").set_value(str(folder)).run()
    _button(at, "Attach").click().run()
    assert not at.exception and lights.get_collection("lights").adapter_path == str(folder.resolve())
    assert at.dataframe[0].value.loc[0, "adapter"] == "lora"
    _button(at, "Detach").click().run()
    assert not at.exception and lights.get_collection("lights").adapter_path is None


def test_train_an_adapter_from_a_qa_file(lights):
    at = _app().run()
    qa = "".join(json.dumps({"question": f"Who built the Pharos? ({i})", "answer": "Sostratus"}) + "\n" for i in range(8))
    uploader = next(u for u in at.file_uploader if "QA pairs" in u.label)
    uploader.set_value(("qa.jsonl", qa.encode(), "application/json"))
    at.number_input[0].set_value(0)  # no synthetic questions: the file only
    at.number_input[1].set_value(2)  # steps
    _button(at, "Train and attach").click().run()
    assert not at.exception
    at = _finish_jobs(at, "train")
    assert not at.exception, at.exception
    assert any(s.value.startswith("train an adapter for lights: done") for s in at.success), \
        [e.value for e in at.error]
    info = lights.get_collection("lights")
    assert info.adapter_path and "adapters" in info.adapter_path
    assert any(c.value.startswith("Adapter `") and "2 steps on 8 examples" in c.value for c in at.caption)


def test_training_errors_are_shown(lights):
    at = _app().run()
    at.number_input[0].set_value(0)  # neither a file nor synthetic questions
    _button(at, "Train and attach").click().run()
    at = _finish_jobs(at, "train")
    assert not at.exception
    assert any("give a QA file" in e.value for e in at.error), [e.value for e in at.error]
    assert lights.get_collection("lights").adapter_path is None


def test_delete_the_collection_needs_confirmation(lights):
    at = _app().run()
    assert not any(b.label == "Delete collection" for b in at.button)
    at.checkbox(key="confirm-delete-lights").check().run()
    _button(at, "Delete collection").click().run()
    assert not at.exception and lights.list_collections() == []
    assert "No collection yet" in at.info[0].value
