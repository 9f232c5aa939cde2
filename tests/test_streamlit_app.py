"""The web UI on the real default model, through streamlit's AppTest (no browser): the router and
every page on an empty home, and a streamed, cited answer. Each page's own tests, on the tiny
model, are in tests/test_web_*.py; the real browser test is tests/test_web_e2e.py."""

from __future__ import annotations

import pytest

from app.demo import DEMO_DIR
from tests.conftest import MODEL_CACHE, REPO

pytestmark = pytest.mark.integration


@pytest.fixture
def app_home(tmp_path, monkeypatch):
    import streamlit as st

    monkeypatch.setenv("LLOCO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LLOCO_MODEL_CACHE", str(MODEL_CACHE))
    st.cache_resource.clear()  # a fresh service on this home
    yield tmp_path / "home"
    st.cache_resource.clear()


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300)


def test_empty_home_says_what_to_do(app_home):
    at = _app().run()
    assert not at.exception
    assert "No collection yet" in at.info[0].value


@pytest.mark.parametrize("page", ["chat_page", "collections_page", "compare_page", "evaluation_page"])
def test_every_page_opens_on_an_empty_home(app_home, page):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(f"from streamlit_app import {page}\n{page}()", default_timeout=300).run()
    assert not at.exception
    assert at.title[0].value in {"Chat with your documents", "Collections", "Compare LLoCO with plain RAG", "Evaluation"}
    assert at.info, "an empty home says what to do"


def test_chat_streams_an_answer_with_citations(app_home):
    from app.config import Settings
    from app.service import LlocoService

    svc = LlocoService(Settings(home=app_home, model_cache=MODEL_CACHE))
    svc.create_collection("notes")
    svc.ingest("notes", [DEMO_DIR / "coffee.txt"])
    at = _app().run()
    assert not at.exception and at.selectbox[0].value == "notes"
    at.sidebar.radio[0].set_value("rag")
    at.chat_input[0].set_value("In which city did the first coffeehouse in England open?").run()
    assert not at.exception
    assistant = [m for m in at.chat_message if m.name == "assistant"]
    assert assistant and assistant[0].markdown[0].value.strip()
    labels = [e.label for e in at.expander]
    assert any(label.startswith("[1] coffee.txt, p. 1") for label in labels), labels
    assert any("prompt tokens" in c.value for c in at.caption)


def _collections_script():
    from streamlit_app import collections_page

    collections_page()


def test_collections_page_creates_lists_and_refuses_bad_names(app_home):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_collections_script, default_timeout=300).run()
    assert not at.exception
    at.text_input[0].set_value("papers")
    at.button[0].click().run()
    assert not at.exception and "created papers" in at.success[0].value
    assert at.dataframe[0].value["name"].tolist() == ["papers"]
    at.text_input[0].set_value("bad name!")
    at.button[0].click().run()
    assert "invalid collection name" in at.error[0].value
