"""A job's life outside its handler: cancelled from any process, settled when it ended without its
handler (cancelled while queued, interrupted too often), recovered when its process died. An
ingestion job's queued documents are settled with it: removed when it was cancelled, failed with
its reason otherwise; an upload's folder is removed once its job has ended."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.jobs.store import JobInfo, get_job, recover_interrupted, request_cancel
from indexing.pipeline import settle_queued

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker


def cleanup(spec: dict[str, Any]) -> None:
    if spec.get("cleanup"):
        shutil.rmtree(spec["cleanup"], ignore_errors=True)


@contextlib.contextmanager
def cleaned_up_at_the_end(spec: dict[str, Any]) -> Iterator[None]:
    """Remove the job's ``cleanup`` folder when it ends — not when its worker is stopped (Ctrl-C): the
    job is queued again then, and its files are what it resumes with."""
    try:
        yield
    except KeyboardInterrupt:
        raise
    except BaseException:
        cleanup(spec)
        raise
    cleanup(spec)


def settle_documents(sessions: sessionmaker, spec: dict[str, Any], *, error: str | None) -> None:
    settle_queued(sessions, list(spec.get("documents") or []), error=error)


def settle(sessions: sessionmaker, info: JobInfo) -> None:
    """A job that ended outside its handler (cancelled while queued, interrupted too often): its
    queued documents removed (cancelled) or failed with the job's reason; its upload folder removed."""
    if info.status not in ("cancelled", "failed") or not info.spec:
        return
    if info.kind == "ingest":
        settle_documents(sessions, info.spec, error=None if info.status == "cancelled" else f"not ingested: {info.error}")
    cleanup(info.spec)


def cancel_job(sessions: sessionmaker, job_id: int) -> JobInfo:
    """Cancel a job from any process: a queued one at once (its queued documents removed), a running
    one at its next progress report. Returns the job as it is now."""
    before = request_cancel(sessions, job_id)
    now = get_job(sessions, job_id)
    if before.status == "queued":
        settle(sessions, now)
    return now


def recover(sessions: sessionmaker) -> list[JobInfo]:
    """Jobs whose process died: queued again to resume, or settled as failed (see :mod:`app.jobs.store`)."""
    found = recover_interrupted(sessions)
    for info in found:
        settle(sessions, info)
    return found
