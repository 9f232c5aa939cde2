"""Chat history in SQL: conversations per collection, each a list of questions and answers.

An answer is stored with its mode, top-k, citations (as JSON), prompt tokens and timings, so a
conversation reopened later shows exactly what was shown when it was asked. Called through
:class:`app.core.service.LlocoService` (``start_chat``, ``list_chats``, ``chat_messages``,
``record_message``, ``delete_chat``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal, TypeVar

from sqlalchemy import func, select

from app.core.citations import Citation
from app.core.second_look import SecondLook
from app.core.verify import Verification, verification_from_json, verification_json
from indexing.catalog import row_by_id, utc_now
from indexing.chat_catalog import ChatMessage, ChatSession
from model.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from indexing.catalog import Collection

    from app.core.answerers import Answer

Role = Literal["user", "assistant"]
NEW_CHAT_TITLE = "New chat"
TITLE_CHARS = 60
_T = TypeVar("_T")


@dataclass(frozen=True)
class ChatInfo:
    """A conversation: its collection, title, times and number of messages."""

    id: int
    collection_id: int
    title: str
    created_at: datetime
    updated_at: datetime
    n_messages: int
    user_id: int | None = None  # its owner; None: the local admin (the CLI)


@dataclass(frozen=True)
class ChatMessageInfo:
    """One stored message; answers carry how they were made and what they cost."""

    id: int
    chat_id: int
    role: str
    text: str
    created_at: datetime
    mode: str | None = None
    top_k: int | None = None
    citations: list[Citation] = field(default_factory=list)
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    retrieval_s: float | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    adapter: str | None = None
    asked_as: str | None = None  # the question as retrieval saw it, when a follow-up was rewritten
    verification: Verification | None = None  # the answer's claims checked against its sources
    second_look: SecondLook | None = None  # the answer replaced (or kept over) a second one

    @classmethod
    def of(cls, row: ChatMessage) -> ChatMessageInfo:
        return cls(row.id, row.chat_id, row.role, row.text, row.created_at, row.mode, row.top_k,
                   [_known(Citation, c) for c in row.citations or []], row.prompt_tokens, row.generated_tokens,
                   row.retrieval_s, row.ttft_s, row.total_s, row.adapter, row.asked_as,
                   verification_from_json(row.verification) if row.verification else None,
                   _known(SecondLook, row.second_look) if row.second_look else None)


def _known(kind: type[_T], data: dict) -> _T:
    """A stored dataclass back (a :class:`Citation`, a :class:`SecondLook`); unknown keys from other
    versions ignored."""
    fields = kind.__dataclass_fields__  # type: ignore[attr-defined]
    return kind(**{k: v for k, v in data.items() if k in fields})


def title_of(question: str) -> str:
    """A chat's title: its first question on one line, cut at a word near ``TITLE_CHARS``."""
    text = " ".join(question.split())
    if len(text) <= TITLE_CHARS:
        return text or NEW_CHAT_TITLE
    cut = text.rfind(" ", 0, TITLE_CHARS)
    return text[: cut if cut > TITLE_CHARS // 2 else TITLE_CHARS].rstrip() + " ..."


def _info(session, chat: ChatSession) -> ChatInfo:
    n = session.scalar(select(func.count()).select_from(ChatMessage).where(ChatMessage.chat_id == chat.id))
    return ChatInfo(chat.id, chat.collection_id, chat.title, chat.created_at, chat.updated_at, int(n or 0), chat.user_id)


def start_chat(sessions: sessionmaker, collection_id: int, title: str | None = None, *,
               user_id: int | None = None) -> ChatInfo:
    """A new, empty conversation with a collection, owned by ``user_id`` (None: the local admin)."""
    with sessions.begin() as session:
        chat = ChatSession(collection_id=collection_id, title=title_of(title) if title else NEW_CHAT_TITLE,
                           user_id=user_id)
        session.add(chat)
        session.flush()
        return _info(session, chat)


def list_chats(sessions: sessionmaker, collection_id: int, *, owner: int | None | Literal["any"] = "any") -> list[ChatInfo]:
    """A collection's conversations (of ``owner`` only, unless "any"), most recently active first."""
    query = select(ChatSession).where(ChatSession.collection_id == collection_id)
    if owner != "any":
        query = query.where(ChatSession.user_id.is_(None) if owner is None else ChatSession.user_id == owner)
    with sessions() as session:
        chats = session.scalars(query.order_by(ChatSession.updated_at.desc(), ChatSession.id.desc())).all()
        return [_info(session, c) for c in chats]


def get_chat(sessions: sessionmaker, chat_id: int) -> ChatInfo:
    with sessions() as session:
        chat = row_by_id(session, ChatSession, chat_id)
        if chat is None:
            raise NotFoundError(f"no chat #{chat_id} (was it or its collection deleted?)")
        return _info(session, chat)


def chat_messages(sessions: sessionmaker, chat_id: int) -> list[ChatMessageInfo]:
    """A conversation's messages in the order they were recorded."""
    get_chat(sessions, chat_id)
    with sessions() as session:
        rows = session.scalars(select(ChatMessage).where(ChatMessage.chat_id == chat_id).order_by(ChatMessage.id)).all()
        return [ChatMessageInfo.of(r) for r in rows]


def record_message(sessions: sessionmaker, chat_id: int, role: Role, text: str, *,
                   answer: Answer | None = None, top_k: int | None = None) -> ChatMessageInfo:
    """Append a question (``role='user'``) or an answer (``role='assistant'``, with ``answer``).

    The first question of a chat still called 'New chat' becomes its title.
    """
    if role not in ("user", "assistant"):
        raise InvalidInputError(f"unknown chat role {role!r}: use 'user' or 'assistant'")
    with sessions.begin() as session:
        chat = row_by_id(session, ChatSession, chat_id)
        if chat is None:
            raise NotFoundError(f"no chat #{chat_id} (was it or its collection deleted?)")
        row = ChatMessage(chat_id=chat_id, role=role, text=text, top_k=top_k, citations=[])
        if answer is not None:
            row.mode, row.citations = answer.mode, [asdict(c) for c in answer.citations]
            row.prompt_tokens, row.generated_tokens = answer.prompt_tokens, answer.generated_tokens
            row.retrieval_s, row.ttft_s, row.total_s = answer.retrieval_s, answer.ttft_s, answer.total_s
            row.adapter, row.asked_as = answer.adapter, answer.standalone
            row.verification = verification_json(answer.verification) if answer.verification else None
            row.second_look = asdict(answer.second_look) if answer.second_look else None
        if role == "user" and chat.title == NEW_CHAT_TITLE:
            chat.title = title_of(text)
        chat.updated_at = utc_now()
        session.add(row)
        session.flush()
        return ChatMessageInfo.of(row)


def delete_chat(sessions: sessionmaker, chat_id: int) -> None:
    """Delete a conversation and its messages."""
    with sessions.begin() as session:
        chat = row_by_id(session, ChatSession, chat_id)
        if chat is None:
            raise NotFoundError(f"no chat #{chat_id} (was it already deleted?)")
        session.delete(chat)


class Conversations:
    """The service's conversations (mixed into :class:`app.core.service.LlocoService`): history in SQL,
    on the service's catalog and collections."""

    sessions: sessionmaker
    collection_row: Callable[[str], Collection]  # the service's

    def start_chat(self, name: str, title: str | None = None, *, user_id: int | None = None) -> ChatInfo:
        """A new conversation with a collection, owned by ``user_id`` (None: the local admin); its
        first question becomes its title."""
        return start_chat(self.sessions, self.collection_row(name).id, title, user_id=user_id)

    def list_chats(self, name: str, *, owner: int | None | Literal["any"] = "any") -> list[ChatInfo]:
        """A collection's conversations (``owner``'s only, unless "any"), most recently active first."""
        return list_chats(self.sessions, self.collection_row(name).id, owner=owner)

    def get_chat(self, chat_id: int) -> ChatInfo:
        return get_chat(self.sessions, chat_id)

    def chat_messages(self, chat_id: int) -> list[ChatMessageInfo]:
        return chat_messages(self.sessions, chat_id)

    def record_message(self, chat_id: int, role: Role, text: str, *, answer: Answer | None = None,
                       top_k: int | None = None) -> ChatMessageInfo:
        """Append a question, or an answer with its mode, citations, prompt tokens and timings."""
        return record_message(self.sessions, chat_id, role, text, answer=answer, top_k=top_k)

    def delete_chat(self, chat_id: int) -> None:
        delete_chat(self.sessions, chat_id)
