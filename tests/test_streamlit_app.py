"""The web UI on the real default model, through streamlit's AppTest (no browser): the router (sign
in first, pages by role) and every page on an empty home, and a streamed, cited answer. Each page's own tests, on the tiny
model, are in tests/test_web_*.py; the real browser test is tests/test_web_e2e.py."""

from __future__ import annotations

import pytest

from app.core.demo import DEMO_DIR
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


@pytest.fixture
def as_admin(app_home):
    """Pages driven directly (not through the router) act as an admin."""
    from app.accounts.store import Principal
    from app.web.auth import use_principal

    use_principal(Principal("test-admin", "admin"))
    yield app_home
    use_principal(None)


def _app(principal=None):
    """The whole app; signed in as ``principal`` when given (its session state, as the login form sets it)."""
    import time

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(REPO / "streamlit_app.py"), default_timeout=300)
    if principal is not None:
        at.session_state["principal"], at.session_state["signed_in_at"] = principal, time.time()
    return at


def _admin():
    from app.accounts.store import Principal

    return Principal("test-admin", "admin")


def test_nothing_but_the_sign_in_page_until_signed_in(app_home):
    from app.accounts.store import Accounts
    from app.config import Settings
    from app.core.service import LlocoService

    at = _app().run()
    assert not at.exception
    assert at.title[0].value == "Sign in to lloco" and "No accounts yet" in at.caption[0].value
    accounts = Accounts(LlocoService(Settings(home=app_home, model_cache=MODEL_CACHE)).sessions)
    accounts.create_user("bob", "battery staple")
    at.text_input[0].set_value("bob")
    at.text_input[1].set_value("wrong password")
    at.button[0].click().run()
    assert at.error[0].value == "wrong user name or password" and at.title[0].value == "Sign in to lloco"
    at.text_input[1].set_value("battery staple")
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Chat with your documents"  # an analyst lands on Chat
    assert any("Signed in as **bob** (analyst)" in c.value for c in at.sidebar.caption)
    at.sidebar.button[-1].click().run()  # sign out
    assert at.title[0].value == "Sign in to lloco"


def test_the_first_sign_in_with_a_one_time_password_asks_for_a_new_one(app_home):
    from app.accounts.store import Accounts
    from app.config import Settings
    from app.core.service import LlocoService

    accounts = Accounts(LlocoService(Settings(home=app_home, model_cache=MODEL_CACHE)).sessions)
    name, once = accounts.bootstrap_admin()  # what `make run` prints
    at = _app().run()
    at.text_input[0].set_value(name)
    at.text_input[1].set_value(once)
    at.button[0].click().run()
    assert not at.exception and at.title[0].value == "Choose a new password"  # no page before it
    boxes = {t.label: t for t in at.text_input}
    boxes["One-time password"].set_value(once)
    boxes["New password"].set_value("my own passphrase")
    boxes["New password, again"].set_value("my own passphrase, mistyped")
    at.button[0].click().run()
    assert at.error[0].value == "the two new passwords differ" and at.title[0].value == "Choose a new password"
    boxes = {t.label: t for t in at.text_input}
    boxes["New password, again"].set_value("my own passphrase")
    at.button[0].click().run()
    assert not at.exception and at.title[0].value != "Choose a new password"
    assert "No collection yet" in at.info[0].value  # the admin's pages, on an empty home
    assert not accounts.get_user(name).must_change_password and accounts.sign_in(name, "my own passphrase")


def test_sessions_expire(app_home):
    at = _app(_admin())
    at.session_state["signed_in_at"] = 0.0  # signed in long ago
    at.run()
    assert at.title[0].value == "Sign in to lloco" and "expired" in at.info[0].value


def test_pages_by_role(app_home):
    from app.accounts.store import Principal
    from streamlit_app import pages_for

    assert [t for t, _, _ in pages_for(Principal("bob", "analyst", 1))] == ["Chat", "Compare"]
    assert [t for t, _, _ in pages_for(_admin())] == ["Chat", "Compare", "Collections", "Evaluation"]
    admin = _app(_admin()).run()
    analyst = _app(Principal("bob", "analyst", 1)).run()
    assert not admin.exception and not analyst.exception
    assert "No collection yet" in admin.info[0].value and "No collection yet" in analyst.info[0].value


def test_admin_pages_refuse_an_analyst_driven_directly(app_home):
    from streamlit.testing.v1 import AppTest

    from app.accounts.store import Principal
    from app.web.auth import use_principal

    use_principal(Principal("bob", "analyst", 1))
    try:
        for page in ("collections_page", "evaluation_page"):
            at = AppTest.from_string(f"from streamlit_app import {page}\n{page}()", default_timeout=300).run()
            assert not at.exception and at.error[0].value == "This page is for admins."
    finally:
        use_principal(None)


@pytest.mark.parametrize("page", ["chat_page", "collections_page", "compare_page", "evaluation_page"])
def test_every_page_opens_on_an_empty_home(as_admin, page):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(f"from streamlit_app import {page}\n{page}()", default_timeout=300).run()
    assert not at.exception
    assert at.title[0].value in {"Chat with your documents", "Collections", "Compare LLoCO with plain RAG", "Evaluation"}
    assert at.info, "an empty home says what to do"


def test_chat_streams_an_answer_with_citations(app_home):  # through the router, signed in
    from app.config import Settings
    from app.core.service import LlocoService

    svc = LlocoService(Settings(home=app_home, model_cache=MODEL_CACHE))
    svc.create_collection("notes")
    svc.ingest("notes", [DEMO_DIR / "coffee.txt"])
    at = _app(_admin()).run()
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


def test_collections_page_creates_lists_and_refuses_bad_names(as_admin):
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
