"""lloco web UI (first cut): chat with a collection, and manage collections.

Run with ``.venv/bin/streamlit run streamlit_app.py``. It calls only ``app.service``; the models
load once per server process (st.cache_resource) and are shared by every browser session.
Not yet here (issue #5): chat history in SQL, page images, the Compare and Evaluation pages.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from model.errors import LlocoError


@st.cache_resource(show_spinner="Loading lloco ...")
def get_service():
    from app.service import LlocoService

    return LlocoService()


def collection_picker(service, key: str) -> str | None:
    names = [c.name for c in service.list_collections()]
    if not names:
        st.info("No collection yet: create one on the Collections page.")
        return None
    return st.selectbox("Collection", names, key=key)


def upload_files(service, name: str) -> None:
    files = st.file_uploader("Add documents (PDF, text, Markdown)", type=["pdf", "txt", "md"],
                             accept_multiple_files=True, key=f"upload-{name}")
    if not files or not st.button(f"Ingest {len(files)} file(s)", key=f"ingest-{name}"):
        return
    with tempfile.TemporaryDirectory(prefix="lloco-upload-") as tmp:
        paths = []
        for f in files:
            path = Path(tmp) / Path(f.name).name
            path.write_bytes(f.getvalue())
            paths.append(path)
        bar = st.progress(0.0, text="starting")

        def on_progress(event) -> None:
            share = (event.file_index + (event.done / event.total if event.total else 0.0)) / max(event.n_files, 1)
            bar.progress(min(share, 1.0), text=f"{event.file}: {event.stage}")

        try:
            results = service.ingest(name, paths, progress=on_progress)
        except LlocoError as exc:
            st.error(str(exc))
            return
    bar.empty()
    for r in results:
        shown = Path(r.path).name
        if r.status == "failed":
            st.error(f"{shown}: {r.error}")
        elif r.status == "skipped":
            st.info(f"{shown}: already in the collection")
        else:
            st.success(f"{shown}: {r.n_pages} pages, {r.n_chunks} chunks")


def show_citations(answer) -> None:
    for n, c in enumerate(answer.citations, 1):
        pages = f"p. {c.page}" if c.page == c.page_end else f"pp. {c.page}-{c.page_end}"
        with st.expander(f"[{n}] {c.document}, {pages} (score {c.score:.2f})"):
            st.markdown(f"> {c.snippet}")
    ttft = f"{answer.ttft_s:.2f} s" if answer.ttft_s is not None else "-"
    st.caption(f"{answer.mode} | prompt tokens {answer.prompt_tokens} | first token {ttft} | total {answer.total_s:.2f} s")


def chat_page() -> None:
    service = get_service()
    st.title("Chat with your documents")
    name = collection_picker(service, "chat-collection")
    if name is None:
        return
    with st.sidebar:
        mode = st.radio("Mode", ["lloco", "rag", "full"], captions=["summary vectors", "chunk text", "whole document"])
        top_k = st.slider("Chunks retrieved (top-k)", 1, 10, service.settings.top_k)
    with st.expander("Add documents"):
        upload_files(service, name)
    history = st.session_state.setdefault("history", {}).setdefault(name, [])
    for role, text, answer in history:
        with st.chat_message(role):
            st.markdown(text)
            if answer is not None:
                show_citations(answer)
    question = st.chat_input("Ask a question about this collection")
    if not question:
        return
    with st.chat_message("user"):
        st.markdown(question)
    with st.chat_message("assistant"):
        try:
            stream = service.ask(name, question, mode=mode, top_k=top_k)
            text = st.write_stream(iter(stream))
        except LlocoError as exc:
            st.error(str(exc))
            return
        show_citations(stream.answer)
    history += [("user", question, None), ("assistant", text if isinstance(text, str) else stream.answer.text, stream.answer)]


def collections_page() -> None:
    service = get_service()
    st.title("Collections")
    with st.form("create"):
        new = st.text_input("New collection name")
        if st.form_submit_button("Create") and new:
            try:
                service.create_collection(new)
                st.success(f"created {new}")
            except LlocoError as exc:
                st.error(str(exc))
    infos = service.list_collections()
    st.dataframe([{"name": c.name, "documents": c.n_documents, "failed": c.n_failed, "chunks": c.n_chunks,
                   "MB": round(c.size_bytes / 2**20, 2), "kappa": c.kappa, "compressor": c.compressor} for c in infos],
                 hide_index=True)
    name = collection_picker(service, "admin-collection")
    if name is None:
        return
    docs = service.list_documents(name)
    st.dataframe([{"id": d.id, "file": d.filename, "status": d.status, "pages": d.n_pages, "chunks": d.n_chunks,
                   "error": d.error or ""} for d in docs], hide_index=True)
    if docs:
        doc = st.selectbox("Document", docs, format_func=lambda d: f"{d.id}: {d.filename}")
        if st.button("Delete document"):
            service.delete_document(name, doc.id)
            st.rerun()
    if st.checkbox(f"I want to delete the collection {name!r} and all its documents"):
        if st.button("Delete collection", type="primary"):
            service.delete_collection(name)
            st.rerun()


if __name__ == "__main__":
    st.set_page_config(page_title="lloco", layout="wide")
    st.navigation([st.Page(chat_page, title="Chat", icon=":material/chat:", default=True),
                   st.Page(collections_page, title="Collections", icon=":material/folder:")]).run()
