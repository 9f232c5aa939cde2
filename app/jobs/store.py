"""Jobs in the catalog (issue 12): what :class:`app.jobs.runner.JobRunner` records, so jobs are listed and
cancelled from any process (`lloco jobs`, the web app, the API), and the durable queue that
:class:`app.jobs.worker.Worker` processes take queued jobs from.

queued -> running -> done | failed | cancelled. A queued job carries its arguments (``spec``) and is
claimed by exactly one worker (:func:`claim`). A running job's row is refreshed at least every
:data:`HEARTBEAT_S` seconds while it reports progress; one whose process is gone (same host, pid
not alive) or silent for :data:`STALE_S` (another host) is *interrupted*: :func:`recover_interrupted`,
which every runner and worker calls when it starts, queues it again when it can be resumed (it
has a spec and fewer than :data:`MAX_ATTEMPTS` starts) and marks it failed with its reason
otherwise — never left "running".
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from indexing.catalog import row_by_id, utc_now
from indexing.job_catalog import JobRecord
from model.errors import NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

HEARTBEAT_S = 2.0  # progress is written at most this often (and always at start and end)
STALE_S = 15 * 60  # a job on another host silent this long is taken for dead
MAX_ATTEMPTS = 3  # an interrupted job is queued again until it has been started this often (a job that
# kills its process every time, say by running out of memory, must not loop for ever)
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
    started_at: datetime | None = None
    attempts: int = 0
    spec: Any = None
    updated_at: datetime | None = None  # its last progress report
    eta_estimate: float | None = None  # the seconds left it estimated then (None: it could not tell)

    @classmethod
    def of(cls, row: JobRecord) -> JobInfo:
        return cls(row.id, row.kind, row.label, row.collection, row.owner, row.status, row.fraction, row.message,
                   row.error, row.result, row.created_at, row.finished_at, bool(row.cancel_requested),
                   row.started_at, row.attempts or 0, row.spec, row.updated_at, row.eta_s)

    @property
    def seconds(self) -> float:
        return ((self.finished_at or utc_now()) - self.created_at).total_seconds()

    @property
    def updated_at_s(self) -> float | None:
        """:attr:`updated_at` as a Unix time (the catalog keeps naive UTC)."""
        return None if self.updated_at is None else self.updated_at.replace(tzinfo=UTC).timestamp()

    @property
    def eta_s(self) -> float | None:
        """Seconds left (None while queued, finished, or while it can't tell): what the job estimated at
        its last report, less the time since."""
        return aged_eta(self.eta_estimate, self.updated_at_s, running=self.status == "running")


def aged_eta(estimate: float | None, at: float | None, *, running: bool) -> float | None:
    """An estimate of seconds left made at Unix time ``at``, now; None when not running, not known, or run
    out (the job is slower than it thought: it no longer knows)."""
    if not running or estimate is None or at is None:
        return None
    left = estimate - (time.time() - at)
    return left if left > 0 or estimate == 0 else None


def eta_seconds(fraction: float | None, elapsed_s: float) -> float | None:
    """The time left when ``fraction`` of the work took ``elapsed_s``: None below 2 % (too early to tell)."""
    if fraction is None or fraction < 0.02 or elapsed_s <= 0:
        return None
    return max(elapsed_s * (1 - fraction) / fraction, 0.0)


def record_start(sessions: sessionmaker, *, kind: str, label: str, collection: str | None, owner: str | None) -> int:
    """A job this process runs now (not queued)."""
    with sessions.begin() as session:
        row = JobRecord(kind=kind, label=label, collection=collection, owner=owner, status="running",
                        message="starting", host=HOST, pid=os.getpid(), started_at=utc_now(), attempts=1)
        session.add(row)
        session.flush()
        return row.id


def enqueue(sessions: sessionmaker, *, kind: str, label: str, spec: dict[str, Any], collection: str | None = None,
            owner: str | None = None) -> int:
    """A queued job, for the first free worker; ``spec`` (JSON) is what the worker runs it with."""
    with sessions.begin() as session:
        row = JobRecord(kind=kind, label=label, collection=collection, owner=owner, status="queued",
                        message="queued", host=HOST, pid=os.getpid(), spec=spec)
        session.add(row)
        session.flush()
        return row.id


def claim(sessions: sessionmaker) -> JobInfo | None:
    """Take the oldest queued job for this process (running, attempt counted), or None when none is
    queued. Two workers never get the same job: the update only succeeds while it is still queued."""
    from sqlalchemy import update

    while True:
        with sessions() as session:
            job_id = session.scalar(select(JobRecord.id).where(JobRecord.status == "queued").order_by(JobRecord.id).limit(1))
        if job_id is None:
            return None
        with sessions.begin() as session:
            taken = session.execute(update(JobRecord).where(JobRecord.id == job_id, JobRecord.status == "queued").values(
                status="running", host=HOST, pid=os.getpid(), started_at=utc_now(), updated_at=utc_now(), fraction=None,
                eta_s=None, message="starting", attempts=JobRecord.attempts + 1)).rowcount
        if taken:
            return get_job(sessions, job_id)


def record_progress(sessions: sessionmaker, job_id: int, fraction: float | None, message: str, *,
                    eta_s: float | None = None) -> bool:
    """Write a job's progress (its heartbeat) and the seconds it estimates it has left; whether someone
    asked to cancel it."""
    with sessions.begin() as session:
        row = row_by_id(session, JobRecord, job_id)
        if row is None:
            return False
        row.fraction, row.message, row.updated_at, row.eta_s = fraction, message[:5000], utc_now(), eta_s
        return bool(row.cancel_requested)


def record_end(sessions: sessionmaker, job_id: int, *, status: str, error: str | None, result: Any) -> None:
    with sessions.begin() as session:
        row = row_by_id(session, JobRecord, job_id)
        if row is not None:
            row.status, row.error, row.result = status, error, result
            if status == "done":  # the last progress line may predate the end (heartbeats are throttled)
                row.fraction, row.message = 1.0, "done"
            row.finished_at = row.updated_at = utc_now()


def requeue(sessions: sessionmaker, job_id: int, message: str) -> None:
    """A running job whose worker stopped (Ctrl-C): queued again, for the next worker to resume."""
    with sessions.begin() as session:
        row = row_by_id(session, JobRecord, job_id)
        if row is not None and row.status == "running":
            row.status, row.message, row.fraction, row.updated_at = "queued", message[:5000], None, utc_now()


def request_cancel(sessions: sessionmaker, job_id: int) -> JobInfo:
    """Ask a running job to stop (it stops at its next progress report); a queued one is cancelled at
    once (no worker will take it); a finished one is left as it is. Returns the job as it was."""
    with sessions.begin() as session:
        row = row_by_id(session, JobRecord, job_id)
        if row is None:
            raise NotFoundError(f"no job #{job_id} (see `lloco jobs list`)")
        before = JobInfo.of(row)
        if row.status == "running":
            row.cancel_requested = True
        elif row.status == "queued":
            row.status, row.error, row.finished_at = "cancelled", "cancelled before it started", utc_now()
        return before


def get_job(sessions: sessionmaker, job_id: int) -> JobInfo:
    with sessions() as session:
        row = row_by_id(session, JobRecord, job_id)
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


def recover_interrupted(sessions: sessionmaker) -> list[JobInfo]:
    """Every "running" job whose process is gone: queued again when it can be resumed (it has a spec,
    was not being cancelled and has been started fewer than MAX_ATTEMPTS times), else marked failed
    with the reason. Returns them as they are now."""
    stale_before = utc_now() - timedelta(seconds=STALE_S)
    fixed = []
    with sessions.begin() as session:
        for row in session.scalars(select(JobRecord).where(JobRecord.status == "running")):
            gone = (row.host == HOST and row.pid != os.getpid() and not _alive(row.pid)) or \
                   (row.host != HOST and row.updated_at < stale_before)
            if not gone:
                continue
            where = f"the process running it (pid {row.pid} on {row.host}) stopped at \"{row.message}\""
            if row.spec is not None and not row.cancel_requested and (row.attempts or 0) < MAX_ATTEMPTS:
                row.status, row.message, row.fraction = "queued", f"queued again: {where}", None
            elif row.cancel_requested:
                row.status, row.finished_at, row.error = "cancelled", utc_now(), f"cancelled; {where}"
            else:
                row.status, row.finished_at = "failed", utc_now()
                tries = f" (started {row.attempts} times)" if row.spec is not None else ""
                row.error = f"interrupted: {where}{tries}: run it again"
            fixed.append(JobInfo.of(row))
    return fixed
