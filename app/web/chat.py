"""The Chat page: conversations with a collection, kept in SQL, with streamed, cited answers.

The sidebar holds the collection, the mode and top-k, and the collection's past conversations
(new, reopen, delete). A conversation is created with its first question. Each answer is
streamed, then stored with its citations, prompt tokens and timings, and shown with them.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import streamlit as st

from app.core.demo import sample_questions
from app.web.auth import get_acting
from app.web.checks import marked, show_check, show_second_look
from app.web.common import (
    MODE_LABELS,
    answer_caption,
    collection_picker,
    get_service,
    job_panel,
    plain,
    plain_stream,
    show_citations,
    show_ingest_results,
    upload_form,
)
from model.errors import LlocoError, NotFoundError

if TYPE_CHECKING:
    from app.core.chats import ChatInfo, ChatMessageInfo
    from app.accounts.access import ActingService  # the page acts as the signed-in user

CHAT_KEY = "chat_by_collection"  # session state: collection name -> open chat id (None: a new one)


def _current(name: str) -> int | None:
    return st.session_state.setdefault(CHAT_KEY, {}).get(name)


def _open(name: str, chat_id: int | None) -> None:
    st.session_state.setdefault(CHAT_KEY, {})[name] = chat_id


def chat_sidebar(service: ActingService, name: str) -> None:
    """New chat, the past conversations (click to reopen) and deleting the open one."""
    current = _current(name)
    if st.button("New chat", icon=":material/add:", key="new-chat", width="stretch",
                 type="primary" if current is None else "secondary"):
        _open(name, None)
        st.rerun()
    chats: list[ChatInfo] = service.list_chats(name)
    if chats:
        st.caption("Conversations")
    for chat in chats[:50]:
        label = f"{chat.title} ({chat.n_messages // 2})"
        if st.button(label, key=f"chat-{chat.id}", width="stretch", type="primary" if chat.id == current else "tertiary",
                     help=f"started {chat.created_at:%Y-%m-%d %H:%M}"):
            _open(name, chat.id)
            st.rerun()
    if current is not None and st.button("Delete this conversation", icon=":material/delete:", key="delete-chat",
                                         width="stretch"):
        try:
            service.delete_chat(current)
        except NotFoundError:
            pass  # deleted in another tab meanwhile
        _open(name, None)
        st.rerun()


def asked_as_caption(asked_as: str | None) -> None:
    """How a rewritten follow-up was asked, under its answer: live and when the chat is redrawn."""
    if asked_as:
        st.caption(f"Asked as: {plain(asked_as)}")


def show_message(service: ActingService, message: ChatMessageInfo) -> None:
    with st.chat_message(message.role):
        shown = marked(message.text, message.verification) if message.role == "assistant" else plain(message.text)
        st.markdown(shown or "_(no answer text)_")
        if message.role == "assistant":
            show_check(message.verification)
            show_second_look(message.second_look)
            asked_as_caption(message.asked_as)
            show_citations(service, message.citations)
            answer_caption(message.mode, message.prompt_tokens, message.ttft_s, message.total_s, message.adapter)


def ask(service: ActingService, name: str, question: str, mode: str, top_k: int,
        document_ids: list[int] | None = None) -> None:
    """Ask, stream the answer, and store both in the open conversation (created if none). The
    conversation's earlier questions make a follow-up standalone ('and in 2022?')."""
    history = []
    if (chat_id := _current(name)) is not None:
        with contextlib.suppress(NotFoundError):
            history = [m.text for m in service.chat_messages(chat_id) if m.role == "user"]
    try:
        stream = service.ask(name, question, mode=mode, top_k=top_k, document_ids=document_ids,  # type: ignore[arg-type]
                             history=history)
    except LlocoError as exc:
        st.error(str(exc))
        return
    with st.chat_message("user"):
        st.markdown(plain(question))
    with st.chat_message("assistant"):
        pieces, slot = iter(stream), st.empty()
        try:
            with slot:
                st.write_stream(plain_stream(pieces))
        except LlocoError as exc:
            st.error(str(exc))
            return
        finally:
            close = getattr(pieces, "close", None)
            if close:
                close()  # in this thread, so the decoder is released here if the run was stopped
        answer = stream.answer
        if answer.text:
            slot.markdown(marked(answer.text, answer.verification))  # the streamed text, its claims marked
        show_check(answer.verification)
        show_second_look(answer.second_look)
        asked_as_caption(answer.standalone)
        if not answer.citations:
            st.warning("No chunks were retrieved for this question (the chosen documents hold none).")
        show_citations(service, answer.citations)
        answer_caption(answer.mode, answer.prompt_tokens, answer.ttft_s, answer.total_s, answer.adapter)
    try:
        chat_id = _current(name) or service.start_chat(name, question).id
        service.record_message(chat_id, "user", question.strip())
        service.record_message(chat_id, "assistant", answer.text, answer=answer, top_k=top_k)
        _open(name, chat_id)
    except NotFoundError as exc:  # the conversation or collection was deleted in another tab
        _open(name, None)
        st.warning(f"The answer was not saved: {exc}")


def empty_chat(collection: str) -> str | None:
    """What an empty conversation shows: a few sample questions for the demo collection (one clicked is
    returned, to be asked), a hint for the others."""
    samples = sample_questions(collection)
    if not samples:
        st.caption("Ask what this collection's documents say: a figure, a name, a date, a definition. Every "
                   "answer cites the pages it comes from; a follow-up (\"and in 2022?\") is read with the "
                   "question before it.")
        return None
    slot = st.empty()
    with slot.container():
        st.caption("Try a question the demo's documents answer:")
        clicked = [q for i, q in enumerate(samples) if st.button(q, key=f"sample-question-{i}", icon=":material/help:")]
    if clicked:
        slot.empty()  # the conversation starts here: the samples give way to it
        return clicked[0]
    return None


def chat_page() -> None:
    service = get_acting(get_service())
    st.title("Chat with your documents")
    name = collection_picker(service, "chat-collection", where=st.sidebar)
    if name is None:
        return
    with st.sidebar:
        mode = st.radio("Mode", list(MODE_LABELS), format_func=MODE_LABELS.get, key="chat-mode")
        top_k = st.slider("Chunks retrieved (top-k)", 1, 10, service.settings.top_k, key="chat-top-k")
        ready = [d for d in service.list_documents(name) if d.status == "ready"]
        chosen = st.multiselect("Only these documents", ready, format_func=lambda d: d.filename,
                                key=f"chat-docs-{name}", help="Empty: the whole collection.")
        st.divider()
        conversations = st.container()
    if service.principal.is_admin:  # analysts read and ask; adding documents is an admin's
        with st.expander("Add documents to this collection"):
            upload_form(service, name, origin="chat")
        job_panel("chat", "ingest", collection=name, on_done=lambda job: show_ingest_results(job.result or []))
    chat_id, shown = _current(name), 0
    if chat_id is not None:
        try:
            for message in service.chat_messages(chat_id):
                show_message(service, message)
                shown += 1
        except NotFoundError:
            _open(name, None)
            st.info("That conversation was deleted (in another tab?): starting a new one.")
    question = st.chat_input(f"Ask a question about {name}")
    if not shown and question is None:
        question = empty_chat(name)
    if question is not None:
        ask(service, name, question, mode, top_k, [d.id for d in chosen] or None)
    with conversations:  # drawn last, so a conversation started by this question is listed
        chat_sidebar(service, name)
