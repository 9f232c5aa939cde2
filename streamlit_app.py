"""lloco's web UI: the router. The pages live in ``app/web/`` (one module each).

Run with ``make run`` (or ``.venv/bin/streamlit run streamlit_app.py``). Nothing but the sign-in page
shows until a user signs in; analysts then get Chat and Compare (on their collections), admins every
page. The pages call only ``app``'s service layer, as the signed-in user (:mod:`app.web.auth`); the
models load once per server process and serve every browser session.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app.accounts.store import Principal

from app.web.auth import account_sidebar, current_principal, login_page, new_password_page
from app.web.chat import chat_page
from app.web.collections import collections_page
from app.web.common import get_service
from app.web.compare import compare_page
from app.web.evaluation import evaluation_page

__all__ = ["chat_page", "collections_page", "compare_page", "evaluation_page", "main", "pages_for", "sign_in"]


def sign_in() -> None:
    login_page(get_service())


def new_password() -> None:
    new_password_page(get_service())


def main() -> None:
    st.set_page_config(page_title="lloco", page_icon=":material/description:", layout="wide")
    st.html("<style>[data-testid=stMainBlockContainer] {padding-top: 2.5rem; max-width: 1400px}</style>")
    principal = current_principal(get_service())
    if principal is None:  # nothing but the sign-in page until someone signs in
        st.navigation([st.Page(sign_in, title="Sign in", icon=":material/login:")]).run()
        return
    account_sidebar(principal)
    if principal.must_change_password:  # a one-time password: a new one before any page
        st.navigation([st.Page(new_password, title="New password", icon=":material/password:")]).run()
        return
    if st.session_state.pop("password_changed", False):
        st.toast("Password changed.")
    st.navigation([st.Page(page, title=title, icon=icon, default=title == "Chat")
                   for title, page, icon in pages_for(principal)]).run()


def pages_for(principal: Principal) -> list[tuple[str, Callable[[], None], str]]:
    """(title, page, icon) of the pages ``principal`` gets: analysts Chat and Compare (on their
    collections), admins every page."""
    pages = [("Chat", chat_page, ":material/chat:"), ("Compare", compare_page, ":material/compare_arrows:")]
    if principal.is_admin:
        pages += [("Collections", collections_page, ":material/folder:"),
                  ("Evaluation", evaluation_page, ":material/analytics:")]
    return pages


if __name__ == "__main__":
    main()
