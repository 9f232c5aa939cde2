"""SQL models of chat sessions and their messages, per collection (schema: migration 0003).

Imported by :mod:`indexing.schema`, so ``Base.metadata`` (which Alembic compares the
migrations against) always holds these tables too. Deleting a collection deletes its chats and
deleting a chat its messages, deleting a user their chats (``ON DELETE CASCADE``). A chat belongs to
its user (``user_id``; NULL for the local admin, who acts through the CLI).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from indexing.catalog import Base, utc_now


class ChatSession(Base):
    """One conversation with a collection; ``title`` is its first question, shortened."""

    __tablename__ = "chat_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None)  # None: the local admin
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)
    messages: Mapped[list[ChatMessage]] = relationship(back_populates="chat", cascade="all, delete-orphan",
                                                       passive_deletes=True, order_by="ChatMessage.id")


class ChatMessage(Base):
    """A question ('user') or an answer ('assistant') with how it was made and what it cost."""

    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))  # 'user' or 'assistant'
    text: Mapped[str] = mapped_column(Text)
    mode: Mapped[str | None] = mapped_column(String(20), default=None)  # lloco, rag or full (answers)
    top_k: Mapped[int | None] = mapped_column(Integer, default=None)
    citations: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # app.core.citations.Citation fields
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    generated_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    retrieval_s: Mapped[float | None] = mapped_column(Float, default=None)
    ttft_s: Mapped[float | None] = mapped_column(Float, default=None)
    total_s: Mapped[float | None] = mapped_column(Float, default=None)  # the answer's latency
    adapter: Mapped[str | None] = mapped_column(String(1000), default=None)
    asked_as: Mapped[str | None] = mapped_column(Text, default=None)  # a follow-up made standalone (0012)
    # its claims checked against its sources: app.core.verify.verification_json (0015)
    verification: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # what a second look did (on_doubt): app.core.second_look.SecondLook's fields (0017)
    second_look: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    chat: Mapped[ChatSession] = relationship(back_populates="messages")
