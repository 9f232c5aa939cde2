"""lloco's web UI: the router. The pages live in ``app/web/`` (one module each).

Run with ``make run`` (or ``.venv/bin/streamlit run streamlit_app.py``). The pages call only
``app``'s service layer; the models load once per server process and serve every browser session.
"""

from __future__ import annotations

import streamlit as st

from app.web.chat import chat_page
from app.web.collections import collections_page
from app.web.compare import compare_page
from app.web.evaluation import evaluation_page

__all__ = ["chat_page", "collections_page", "compare_page", "evaluation_page", "main"]


def main() -> None:
    st.set_page_config(page_title="lloco", page_icon=":material/description:", layout="wide")
    st.html("<style>[data-testid=stMainBlockContainer] {padding-top: 2.5rem; max-width: 1400px}</style>")
    st.navigation([st.Page(chat_page, title="Chat", icon=":material/chat:", default=True),
                   st.Page(collections_page, title="Collections", icon=":material/folder:"),
                   st.Page(compare_page, title="Compare", icon=":material/compare_arrows:"),
                   st.Page(evaluation_page, title="Evaluation", icon=":material/analytics:")]).run()


if __name__ == "__main__":
    main()
