"""Jobs in the catalog (issue 12): what :class:`app.jobs.JobRunner` records, so jobs are listed and
cancelled from any process (`lloco jobs`, the web app, the API) and a job whose process died is
marked failed with its reason instead of staying "running" for ever.

A running job's row is refreshed at least every :data:`HEARTBEAT_S` seconds while it reports
progress; one whose process is gone (same host, pid not alive) or silent for :data:`STALE_S`
(another host) is *interrupted*: :func:`recover_interrupted` marks it failed, as every runner
does when it starts.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from indexing.catalog import _now
from indexing.job_catalog import JobRecord
from model.errors import NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

HEARTBEAT_S = 2.0  # progress is written at most this often (and always at start and end)
STALE_S = 15 * 60  # a job on another host silent this long is taken for dead
HOST = socket.gethostname()


@dataclass(frozen=True)
class JobInfo:
    """A stored job, as listed by `lloco jobs list` and served by the API."""

    id: int
    kind: str
    label: str
    collection: str | None
    owner: str | None
    status: str
    fraction: float | None
    message: str
    error: str | None
    result: Any
    created_at: datetime
    finished_at: datetime | None
    cancel_requested: bool

    @classmethod
    def of(cls, row: JobRecord) -> JobInfo:
        return cls(row.id, row.kind, row.label, row.collection, row.owner, row.status, row.fraction, row.message,
                   row.error, row.result, row.created_at, row.finished_at, bool(row.cancel_requested))

    @property
    def seconds(self) -> float:
        return ((self.finished_at or _now()) - self.created_at).total_seconds()


def record_start(sessions: sessionmaker, *, kind: str, label: str, collection: str | None, owner: str | None) -> int:
    with sessions.begin() as session:
        row = JobRecord(kind=kind, label=label, collection=collection, owner=owner, status="running",
                        message="starting", host=HOST, pid=os.getpid())
        session.add(row)
        session.flush()
        return row.id


def record_progress(sessions: sessionmaker, job_id: int, fraction: float | None, message: str) -> bool:
    """Write a job's progress (its heartbeat); whether someone asked to cancel it."""
    with sessions.begin() as session:
        row = session.get(JobRecord, job_id)
        if row is None:
            return False
        row.fraction, row.message, row.updated_at = fraction, message[:5000], _now()
        return bool(row.cancel_requested)


def record_end(sessions: sessionmaker, job_id: int, *, status: str, error: str | None, result: Any) -> None:
    with sessions.begin() as session:
        row = session.get(JobRecord, job_id)
        if row is not None:
            row.status, row.error, row.result = status, error, result
            row.fraction = 1.0 if status == "done" else row.fraction
            row.finished_at = row.updated_at = _now()


def request_cancel(sessions: sessionmaker, job_id: int) -> JobInfo:
    """Ask a running job to stop (it stops at its next progress report); a finished one is left as it is."""
    with sessions.begin() as session:
        row = session.get(JobRecord, job_id)
        if row is None:
            raise NotFoundError(f"no job #{job_id} (see `lloco jobs list`)")
        if row.status == "running":
            row.cancel_requested = True
        return JobInfo.of(row)


def get_job(sessions: sessionmaker, job_id: int) -> JobInfo:
    with sessions() as session:
        row = session.get(JobRecord, job_id)
        if row is None:
            raise NotFoundError(f"no job #{job_id} (see `lloco jobs list`)")
        return JobInfo.of(row)


def list_jobs(sessions: sessionmaker, *, limit: int = 50, status: str | None = None,
              collection: str | None = None) -> list[JobInfo]:
    """The newest jobs first."""
    query = select(JobRecord).order_by(JobRecord.id.desc()).limit(limit)
    if status:
        query = query.where(JobRecord.status == status)
    if collection:
        query = query.where(JobRecord.collection == collection)
    with sessions() as session:
        return [JobInfo.of(r) for r in session.scalars(query)]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def recover_interrupted(sessions: sessionmaker) -> list[int]:
    """Mark failed, with the reason, every "running" job whose process is gone; their ids."""
    stale_before = _now() - timedelta(seconds=STALE_S)
    fixed = []
    with sessions.begin() as session:
        for row in session.scalars(select(JobRecord).where(JobRecord.status == "running")):
            gone = (row.host == HOST and row.pid != os.getpid() and not _alive(row.pid)) or \
                   (row.host != HOST and row.updated_at < stale_before)
            if gone:
                row.status, row.finished_at = "failed", _now()
                row.error = (f"interrupted: the process running it (pid {row.pid} on {row.host}) stopped at "
                             f"\"{row.message}\": run it again")
                fixed.append(row.id)
    return fixed
