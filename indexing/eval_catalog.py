"""SQL models of evaluation runs and their per-question rows (schema: migration 0002).

Imported by :mod:`indexing.schema`, so ``Base.metadata`` (which Alembic compares the
migrations against) always holds these tables too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import JSON, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from indexing.catalog import Base, utc_now

RunStatus = Literal["running", "done", "failed"]
RowStatus = Literal["ok", "failed"]


class EvalRun(Base):
    """One evaluation run: a dataset file asked in some modes with one set of models and settings."""

    __tablename__ = "eval_runs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    dataset: Mapped[str] = mapped_column(String(50))
    path: Mapped[str] = mapped_column(String(2000))
    modes: Mapped[str] = mapped_column(String(100))  # comma-separated, in asking order
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)  # limit, top-k, collection, generation settings
    decoder: Mapped[str] = mapped_column(String(500))
    compressor: Mapped[str] = mapped_column(String(500))  # the compressor's ident
    adapter: Mapped[str | None] = mapped_column(String(1000), default=None)  # lloco mode's LoRA, if any
    status: Mapped[str] = mapped_column(String(20), default="running")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    rows: Mapped[list[EvalRow]] = relationship(back_populates="run", cascade="all, delete-orphan", passive_deletes=True)


class EvalRow(Base):
    """One question asked in one mode: the answer, its scores, prompt size and timings."""

    __tablename__ = "eval_rows"
    __table_args__ = (UniqueConstraint("run_id", "qid", "mode", name="uq_eval_row"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True)
    qid: Mapped[str] = mapped_column(String(200))
    doc_id: Mapped[str] = mapped_column(String(500))
    mode: Mapped[str] = mapped_column(String(20))
    question: Mapped[str] = mapped_column(Text)
    prediction: Mapped[str | None] = mapped_column(Text, default=None)
    references: Mapped[list[str]] = mapped_column(JSON)
    score: Mapped[dict[str, float]] = mapped_column(JSON)  # every metric of the dataset, by name
    details: Mapped[dict[str, Any]] = mapped_column(JSON)  # e.g. option log-probs, the needle's cell
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text, default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    context_tokens: Mapped[int | None] = mapped_column(Integer, default=None)  # the chunks' part of the prompt
    generated_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    chunk_ids: Mapped[list[int]] = mapped_column(JSON)  # retrieved chunks, best first
    retrieval_s: Mapped[float | None] = mapped_column(Float, default=None)
    ttft_s: Mapped[float | None] = mapped_column(Float, default=None)
    total_s: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    run: Mapped[EvalRun] = relationship(back_populates="rows")
