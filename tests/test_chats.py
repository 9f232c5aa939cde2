"""Chat history in SQL (app/core/chats.py through LlocoService; migration 0003): conversations per
collection, messages with citations and costs, titles, ordering, deletion and cascades."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select, text

from app.core.chats import NEW_CHAT_TITLE, title_of
from indexing.catalog import open_catalog
from indexing.chat_catalog import ChatMessage, ChatSession
from model.errors import InvalidInputError, NotFoundError


@pytest.fixture
def notes(service, pdf_factory):
    service.create_collection("notes")
    service.ingest("notes", [pdf_factory("keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])])
    return service


def test_a_conversation_keeps_questions_and_answers_with_citations_and_costs(notes):
    chat = notes.start_chat("notes")
    assert (chat.title, chat.n_messages) == (NEW_CHAT_TITLE, 0)
    question = "What did the keeper light?"
    notes.record_message(chat.id, "user", question)
    stream = notes.ask("notes", question, mode="rag", top_k=2)
    answer = stream.read()
    stored = notes.record_message(chat.id, "assistant", answer.text, answer=answer, top_k=2)
    assert stored.citations == answer.citations  # the same Citation objects back from JSON
    messages = notes.chat_messages(chat.id)
    assert [(m.role, m.text) for m in messages] == [("user", question), ("assistant", answer.text)]
    reply = messages[1]
    assert (reply.mode, reply.top_k, reply.prompt_tokens, reply.generated_tokens) == \
        ("rag", 2, answer.prompt_tokens, answer.generated_tokens)
    assert (reply.ttft_s, reply.total_s, reply.retrieval_s) == (answer.ttft_s, answer.total_s, answer.retrieval_s)
    assert reply.citations[0].document == "keeper.pdf" and reply.citations[0].page == 1
    assert messages[0].mode is None and messages[0].citations == []
    [listed] = notes.list_chats("notes")
    assert (listed.title, listed.n_messages) == (question, 2)  # the first question became the title


def test_chats_are_per_collection_and_most_recent_first(notes):
    notes.create_collection("other")
    first, second = notes.start_chat("notes", "first"), notes.start_chat("notes", "second")
    notes.start_chat("other", "elsewhere")
    assert [c.title for c in notes.list_chats("notes")] == ["second", "first"]
    notes.record_message(first.id, "user", "back to the first")
    assert [c.title for c in notes.list_chats("notes")] == ["first", "second"]  # an explicit title stays
    assert [c.title for c in notes.list_chats("other")] == ["elsewhere"]
    assert second.collection_id != notes.list_chats("other")[0].collection_id


def test_delete_chat_and_errors(notes):
    chat = notes.start_chat("notes")
    notes.record_message(chat.id, "user", "hello")
    notes.delete_chat(chat.id)
    assert notes.list_chats("notes") == []
    with pytest.raises(NotFoundError):
        notes.chat_messages(chat.id)
    with pytest.raises(NotFoundError):
        notes.record_message(chat.id, "user", "again")
    with pytest.raises(NotFoundError):
        notes.delete_chat(chat.id)
    with pytest.raises(NotFoundError):
        notes.start_chat("missing")
    with pytest.raises(InvalidInputError):
        notes.record_message(notes.start_chat("notes").id, "system", "no")  # type: ignore[arg-type]


def test_deleting_a_collection_deletes_its_chats_and_messages(notes):
    notes.create_collection("kept")
    gone = notes.start_chat("notes")
    notes.record_message(gone.id, "user", "q")
    kept = notes.start_chat("kept")
    notes.record_message(kept.id, "user", "q")
    notes.delete_collection("notes")
    with notes.sessions() as s:
        assert s.scalars(select(ChatSession.id)).all() == [kept.id]
        assert s.scalar(select(func.count()).select_from(ChatMessage)) == 1


def test_titles_are_one_line_and_cut_at_a_word():
    assert title_of("  What   is\nthis? ") == "What is this?"
    long = title_of("word " * 40)
    assert long.endswith(" ...") and len(long) <= 64 and "  " not in long
    assert title_of("   ") == NEW_CHAT_TITLE


def test_upgrade_from_0002_keeps_data_and_adds_chat_tables(catalog_at):
    url, engine = catalog_at("0002")
    assert "chat_sessions" not in inspect(engine).get_table_names()
    sessions = open_catalog(url)
    assert {"chat_sessions", "chat_messages"} <= set(inspect(sessions.kw["bind"]).get_table_names())
    with sessions.begin() as s:
        s.add(ChatSession(collection_id=1, title="t"))
    with sessions.begin() as s:  # ON DELETE CASCADE from the collection
        s.execute(text("DELETE FROM collections WHERE name = 'old'"))
    with sessions() as s:
        assert s.scalars(select(ChatSession)).all() == []
