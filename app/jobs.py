"""Background jobs (ingestion, rebuild, adapter training, evaluation) for the web UI.

A job runs in its own thread, so a long one neither freezes the page that started it nor the
other pages and browser sessions; the pages poll its progress. A job gets a ``report(fraction,
message)`` callback; whatever it returns is its result, whatever it raises its error (lloco's
own errors as their message, anything else with its type, and logged).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from model.errors import LlocoError

if TYPE_CHECKING:
    from indexing.pipeline import Progress

log = logging.getLogger(__name__)
JobStatus = Literal["running", "done", "failed"]
Report = Callable[[float | None, str], None]
STAGES = ("parse", "chunk", "embed", "compress", "index")  # an ingested file's stages, in order


@dataclass
class Job:
    """One background job and where it stands; ``fraction`` is None while its length is unknown."""

    id: int
    kind: str  # 'ingest', 'rebuild', 'train', 'eval'
    label: str
    collection: str | None = None
    status: JobStatus = "running"
    fraction: float | None = None
    message: str = "starting"
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    finished: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (True) or ``timeout`` seconds pass (False)."""
        return self._done.wait(timeout)


class JobRunner:
    """Starts jobs in daemon threads and remembers the most recent ``keep`` of them."""

    def __init__(self, keep: int = 50) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.keep = keep

    def submit(self, kind: str, label: str, work: Callable[[Report], Any], *, collection: str | None = None) -> Job:
        """Start ``work(report)`` in a thread and return its job at once."""
        with self._lock:
            job = Job(next(self._ids), kind, label, collection)
            self._jobs[job.id] = job
            for old in sorted(self._jobs)[: max(len(self._jobs) - self.keep, 0)]:
                if not self._jobs[old].running:
                    del self._jobs[old]

        def report(fraction: float | None, message: str) -> None:
            job.fraction = None if fraction is None else min(max(float(fraction), 0.0), 1.0)
            job.message = message

        def run() -> None:
            try:
                job.result = work(report)
                job.status, job.fraction = "done", 1.0
            except LlocoError as exc:
                job.status, job.error = "failed", str(exc)
            except Exception as exc:
                log.exception("job %s (%s) failed", job.id, label)
                job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            finally:
                job.finished = time.time()
                job._done.set()

        threading.Thread(target=run, name=f"lloco-job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def jobs(self, *, kind: str | None = None, collection: str | None = None) -> list[Job]:
        """Jobs, newest first, optionally of one kind or one collection."""
        with self._lock:
            found = list(self._jobs.values())
        return [j for j in reversed(found) if (kind is None or j.kind == kind)
                and (collection is None or j.collection == collection)]

    def busy(self, collection: str) -> Job | None:
        """A running job that writes to ``collection`` (ingest, rebuild, train), if any."""
        return next((j for j in self.jobs(collection=collection) if j.running), None)


def stage_line(stage: str) -> str:
    """parse -> chunk -> embed -> compress -> index, the current stage in bold, done ones ticked."""
    if stage == "done":
        return " → ".join(f"{s} ✓" for s in STAGES)
    at = STAGES.index(stage) if stage in STAGES else 0
    return " → ".join(f"{s} ✓" if i < at else (f"**{s}**" if i == at else s) for i, s in enumerate(STAGES))


def ingest_reporter(report: Report) -> Callable[[Progress], None]:
    """A pipeline progress callback that reports the file, its stage and the overall share."""

    def on_progress(event: Progress) -> None:
        within = event.done / event.total if event.total else 0.0
        at = STAGES.index(event.stage) if event.stage in STAGES else len(STAGES)
        share = (event.file_index + min((at + within) / len(STAGES), 1.0)) / max(event.n_files, 1)
        units = f" ({event.done}/{event.total} chunks)" if event.total and event.stage != "done" else ""
        report(share, f"{event.file} (file {event.file_index + 1} of {event.n_files}): {stage_line(event.stage)}{units}")

    return on_progress
