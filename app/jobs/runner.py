"""Background jobs (ingestion, rebuild, adapter training, evaluation) for the web UI and the API.

A job runs in its own thread, so a long one neither freezes the page that started it nor the
other pages and browser sessions; the pages poll its progress. A job gets a ``report(fraction,
message)`` callback; whatever it returns is its result, whatever it raises its error (lloco's
own errors as their message, anything else with its type, and logged). With the catalog's
sessions the runner also records every job there (:mod:`app.jobs.store`): listed and cancelled
from any process, marked failed with its reason if its process dies. A cancel takes effect at
the job's next progress report, as :class:`JobCancelled` (a BaseException, like Ctrl-C, so the
ingestion pipeline rolls the current document back rather than recording it as failed).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from typing import TYPE_CHECKING, Any, Literal, Protocol

from app.jobs import store as job_store
from app.jobs.lifecycle import cancel_job, recover
from app.jobs.eta import IngestClock, StageRates
from app.jobs.store import aged_eta, eta_seconds, get_job
from indexing.pipeline import WORK_STAGES
from model.errors import LlocoError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

    from indexing.pipeline import Progress


class JobCancelled(BaseException):  # noqa: N818 - raised into the job like KeyboardInterrupt, not an error
    """Raised by a job's ``report`` once someone asked to cancel it."""

log = logging.getLogger(__name__)
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
PACE = "pace"  # a report without a measured time left: the pace so far is the estimate


class Report(Protocol):
    """A job's progress callback: the share done (None: unknown), what it does now, and optionally the
    seconds it has left as the job measured them (None: it can't tell yet); without ``eta_s`` the
    time left is extrapolated from the share done so far (:func:`app.jobs.store.eta_seconds`)."""

    def __call__(self, fraction: float | None, message: str, /, *, eta_s: float | None | str = PACE) -> None: ...

STAGES = WORK_STAGES  # an ingested file's stages, in order (the pipeline's)


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
    cancel_requested: bool = False
    run_started: float | None = None  # when it started running (queued jobs wait first)
    eta_estimate: float | None = None  # seconds left as last estimated (at eta_at, a time.time())
    eta_at: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _refresh: Callable[[Job], None] | None = field(default=None, repr=False)  # a job another process runs

    @property
    def running(self) -> bool:
        """Not finished yet: queued or running (what pages poll, what makes a collection busy)."""
        return self.status in ("queued", "running")

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def eta_s(self) -> float | None:
        """Seconds left while it runs: the last estimate less the time since (None: it cannot tell)."""
        return aged_eta(self.eta_estimate, self.eta_at, running=self.status == "running")

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends (True) or ``timeout`` seconds pass (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._done.is_set():
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            refresh = self._refresh  # None once this process's worker runs it (it may take over meanwhile)
            if refresh is None:
                return self._done.wait(left)
            refresh(self)  # run by another process: follow its row in the catalog
            if self._done.is_set() or left == 0.0:
                break
            self._done.wait(0.2 if left is None else min(0.2, left))
        return self._done.is_set()


class Stoppable(Protocol):
    """A worker thread, as its runner sees it (:class:`app.jobs.worker.Worker`)."""

    def stop(self, timeout: float | None = None) -> None: ...


class JobRunner:
    """Starts jobs in daemon threads and remembers the most recent ``keep`` of them; with
    ``sessions`` (the catalog) it records them there too, queues jobs for workers (:meth:`enqueue`),
    and on start resumes or marks failed the jobs whose process died."""

    def __init__(self, keep: int = 50, *, sessions: sessionmaker | None = None) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.keep, self.sessions = keep, sessions
        self.wake = threading.Event()  # set when a job is queued: an embedded worker looks at once
        self.worker: Stoppable | None = None  # the worker thread serving this runner (app.jobs.worker.start_worker)
        if sessions is not None:
            for info in recover(sessions):
                log.warning("job #%s was interrupted by a restart or crash: %s", info.id, info.status)

    def close(self, timeout: float | None = 30.0) -> None:
        """Stop the worker thread, if any, once its job under way (if any) ends."""
        if self.worker is not None:
            self.worker.stop(timeout)
            self.worker = None

    def enqueue(self, kind: str, label: str, spec: dict[str, Any], *, collection: str | None = None,
                owner: str | None = None) -> Job:
        """Queue a job (kind in :data:`app.jobs.handlers.HANDLERS`, ``spec`` its JSON arguments) for the
        first free worker — this process's (:mod:`app.jobs.worker`) or a `lloco worker` — and return it."""
        if self.sessions is None:
            raise RuntimeError("queued jobs need the catalog: JobRunner(sessions=...)")
        job_id = job_store.enqueue(self.sessions, kind=kind, label=label, spec=spec, collection=collection, owner=owner)
        job = Job(job_id, kind, label, collection, status="queued", message="queued", _refresh=self._sync)
        self._remember(job)
        self.wake.set()
        return job

    def execute(self, info: Any, work: Callable[[Report], Any]) -> BaseException | None:
        """Run a job a worker claimed from the queue (``info``: its :class:`app.jobs.store.JobInfo`) here,
        recording progress and outcome like any job. Stopped by Ctrl-C, it is queued again (resumed by
        the next worker) rather than recorded as cancelled."""
        with self._lock:
            job = self._jobs.get(info.id)
        if job is None:
            job = Job(info.id, info.kind, info.label, info.collection)
            self._remember(job)
        with self._lock:  # from now on this process's object is the truth: _sync leaves it alone
            job._refresh = None
            job.status, job.message, job.run_started = "running", "starting", time.time()
        return self._run(job, work, requeue_on_interrupt=True)

    def _sync(self, job: Job) -> None:
        """A job this process queued but another runs: copy its state from the catalog."""
        if job._refresh is None or job._done.is_set() or self.sessions is None:
            return
        try:
            info = get_job(self.sessions, job.id)
        except NotFoundError:
            return
        with self._lock:
            if job._refresh is None or job._done.is_set():  # taken over by this process's worker meanwhile
                return
            job.status, job.fraction, job.message, job.error = info.status, info.fraction, info.message, info.error
            job.result, job.cancel_requested = info.result, info.cancel_requested
            job.eta_estimate, job.eta_at = info.eta_estimate, info.updated_at_s
            job.run_started = info.started_at.replace(tzinfo=UTC).timestamp() if info.started_at else None
            if info.status not in ("queued", "running"):
                job.finished = time.time()
                job._done.set()

    def submit(self, kind: str, label: str, work: Callable[[Report], Any], *, collection: str | None = None,
               owner: str | None = None) -> Job:
        """Start ``work(report)`` in a thread and return its job at once."""
        job = self._new(kind, label, collection, owner)
        threading.Thread(target=self._run, args=(job, work), name=f"lloco-job-{job.id}", daemon=True).start()
        return job

    def run(self, kind: str, label: str, work: Callable[[Report], Any], *, collection: str | None = None,
            owner: str | None = None) -> Any:
        """Run ``work(report)`` here and now (the CLI), recorded like a background job, and return its
        result; what the job raised (a cancel as :class:`JobCancelled`, Ctrl-C) is raised again once recorded."""
        job = self._new(kind, label, collection, owner)
        if (raised := self._run(job, work)) is not None:
            raise raised
        return job.result

    def _new(self, kind: str, label: str, collection: str | None, owner: str | None) -> Job:
        job_id = (job_store.record_start(self.sessions, kind=kind, label=label, collection=collection, owner=owner)
                  if self.sessions is not None else next(self._ids))
        job = Job(job_id, kind, label, collection, run_started=time.time())
        self._remember(job)
        return job

    def _remember(self, job: Job) -> None:
        with self._lock:
            self._jobs[job.id] = job
            for old in sorted(self._jobs)[: max(len(self._jobs) - self.keep, 0)]:
                if not self._jobs[old].running:
                    del self._jobs[old]

    def _reporter(self, job: Job) -> Report:
        last = [0.0]

        def report(fraction: float | None, message: str, /, *, eta_s: float | None | str = PACE) -> None:
            job.fraction = None if fraction is None else min(max(float(fraction), 0.0), 1.0)
            now = time.time()
            if eta_s == PACE:
                eta_s = eta_seconds(job.fraction, now - (job.run_started or now))
            job.message, job.eta_estimate, job.eta_at = message, eta_s, now
            if self.sessions is not None and time.monotonic() - last[0] >= job_store.HEARTBEAT_S:
                last[0] = time.monotonic()
                job.cancel_requested |= job_store.record_progress(self.sessions, job.id, job.fraction, message,
                                                                  eta_s=job.eta_estimate)
            if job.cancel_requested:
                raise JobCancelled(f"job #{job.id} cancelled")

        return report

    def _run(self, job: Job, work: Callable[[Report], Any], *, requeue_on_interrupt: bool = False) -> BaseException | None:
        """Run a job to its end and record it; what it raised (None when it finished)."""
        raised: BaseException | None = None
        try:
            job.result = work(self._reporter(job))
            job.status, job.fraction = "done", 1.0
        except JobCancelled as exc:
            job.status, job.error, raised = "cancelled", f"cancelled at: {job.message}", exc
        except KeyboardInterrupt as exc:
            if requeue_on_interrupt:
                job.status, job.message, raised = "queued", f"queued again: its worker stopped at: {job.message}", exc
            else:
                job.status, job.error, raised = "cancelled", f"interrupted (Ctrl-C) at: {job.message}", exc
        except LlocoError as exc:
            job.status, job.error, raised = "failed", str(exc), exc
        except Exception as exc:
            log.exception("job %s (%s) failed", job.id, job.label)
            job.status, job.error, raised = "failed", f"{type(exc).__name__}: {exc}", exc
        finally:
            if self.sessions is not None:
                if job.status == "queued":
                    job_store.requeue(self.sessions, job.id, job.message)
                else:
                    job_store.record_end(self.sessions, job.id, status=job.status, error=job.error,
                                         result=to_json(job.result) if job.status == "done" else None)
            if job.status == "queued":
                job._refresh = self._sync  # another worker may take it from here: follow the catalog
            else:
                job.finished = time.time()
                job._done.set()
        return raised

    def cancel(self, job_id: int) -> None:
        """Ask a job to stop at its next progress report (a queued one stops at once): one of this
        runner's, or (with the catalog) any process's."""
        if (job := self._jobs.get(job_id)) is not None and job.status == "running":
            job.cancel_requested = True
        if self.sessions is not None:
            cancel_job(self.sessions, job_id)
            if job is not None and job.status == "queued":
                job._refresh = job._refresh or self._sync
                self._sync(job)
        elif job is None:
            raise NotFoundError(f"no job #{job_id}")

    def get(self, job_id: int) -> Job | None:
        job = self._jobs.get(job_id)
        if job is not None:
            self._sync(job)
        return job

    def jobs(self, *, kind: str | None = None, collection: str | None = None) -> list[Job]:
        """Jobs, newest first, optionally of one kind or one collection."""
        with self._lock:
            found = list(self._jobs.values())
        for job in found:
            self._sync(job)
        return [j for j in reversed(found) if (kind is None or j.kind == kind)
                and (collection is None or j.collection == collection)]

    def busy(self, collection: str) -> Job | None:
        """A queued or running job that writes to ``collection`` (ingest, rebuild, train), if any."""
        return next((j for j in self.jobs(collection=collection) if j.running), None)


def to_json(value: Any) -> Any:
    """``value`` as JSON-ready data (dataclasses as dicts, datetimes and paths as strings), or None
    when it has no JSON form: a job's result for the catalog, an API response body."""
    import json
    from dataclasses import asdict, is_dataclass

    def plain(v: Any) -> Any:
        if is_dataclass(v) and not isinstance(v, type):
            return asdict(v)
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    try:
        return json.loads(json.dumps(plain(value), default=str))
    except (TypeError, ValueError):
        return None


def stage_line(stage: str) -> str:
    """parse -> chunk -> embed -> compress -> index, the current stage in bold, done ones ticked."""
    if stage == "done":
        return " → ".join(f"{s} ✓" for s in STAGES)
    at = STAGES.index(stage) if stage in STAGES else 0
    return " → ".join(f"{s} ✓" if i < at else (f"**{s}**" if i == at else s) for i, s in enumerate(STAGES))


def ingest_reporter(report: Report, *, rates: StageRates | None = None,
                    noun: str = "file") -> Callable[[Progress], None]:
    """A pipeline progress callback that reports the file (a rebuild: ``noun`` "document"), its stage, the
    overall share, and the time left from the throughput measured per stage (:mod:`app.jobs.eta`;
    ``rates``: what earlier jobs on the collection measured, :func:`app.jobs.eta.rates_for`)."""
    clock = IngestClock(rates if rates is not None else StageRates())

    def on_progress(event: Progress) -> None:
        within = event.done / event.total if event.total else 0.0
        at = STAGES.index(event.stage) if event.stage in STAGES else len(STAGES)
        share = (event.file_index + min((at + within) / len(STAGES), 1.0)) / max(event.n_files, 1)
        units = f" ({event.done}/{event.total} chunks)" if event.total and event.stage != "done" else ""
        report(share, f"{event.file} ({noun} {event.file_index + 1} of {event.n_files}): "
               f"{stage_line(event.stage)}{units}", eta_s=clock.observe(event))

    return on_progress
