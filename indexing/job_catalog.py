"""SQL model of background jobs (schema: migrations 0006 and 0008): ingestion, rebuild, adapter training and
evaluation, with their progress, so a job outlives the page that started it, is listed and
cancelled from any process, and one interrupted by a crash or restart is marked failed with its
reason on the next start (never left "running").

Imported by :mod:`indexing.schema`, so ``Base.metadata`` holds this table too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from indexing.catalog import Base, utc_now


class JobRecord(Base):
    """One job: ``status`` is queued, running, done, failed or cancelled; ``host``/``pid`` the process that
    queued or runs it; ``spec`` the arguments a worker runs a queued job with (None: a job run in place)."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # ingest, rebuild, train, eval
    label: Mapped[str] = mapped_column(String(500))
    collection: Mapped[str | None] = mapped_column(String(200), default=None, index=True)
    owner: Mapped[str | None] = mapped_column(String(100), default=None)  # who started it (None: the local admin)
    status: Mapped[str] = mapped_column(String(20), index=True)
    fraction: Mapped[float | None] = mapped_column(Float, default=None)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    result: Mapped[Any | None] = mapped_column(JSON, default=None, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(default=utc_now)  # the last progress report: a heartbeat
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
    spec: Mapped[Any | None] = mapped_column(JSON, default=None, nullable=True)  # migration 0008
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # times a worker started it
    started_at: Mapped[datetime | None] = mapped_column(default=None)  # when it last started running
    eta_s: Mapped[float | None] = mapped_column(Float, default=None)  # seconds left estimated at updated_at (0013)
