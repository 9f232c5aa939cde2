"""The worker that runs queued jobs (:mod:`app.jobs.handlers`) one at a time: in a thread of the web
app or API server (the ``embedded_worker`` setting, on by default) or as its own process
(`lloco worker`). Any number of workers may serve one catalog; each job is claimed by exactly one.
A worker that starts first resumes the jobs whose process died (queued again, a few times at most).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from app.jobs import store as job_store
from app.jobs.handlers import HANDLERS
from app.jobs.runner import JobRunner

if TYPE_CHECKING:
    from app.core.service import LlocoService

log = logging.getLogger(__name__)
POLL_S = 1.0  # how often an idle worker looks for queued jobs another process added


class Worker:
    """Claims queued jobs from the catalog and runs them through ``runner`` (which records them)."""

    def __init__(self, service: LlocoService, runner: JobRunner, *, poll_s: float = POLL_S) -> None:
        self.service, self.runner, self.poll_s = service, runner, poll_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> bool:
        """Run the oldest queued job, if any, to its end; whether there was one."""
        info = job_store.claim(self.service.sessions)
        if info is None:
            return False
        handler = HANDLERS.get(info.kind)
        if handler is None:  # queued by a newer lloco: leave a clear reason
            job_store.record_end(self.service.sessions, info.id, status="failed", result=None,
                                 error=f"this worker does not know jobs of kind {info.kind!r}")
            return True
        log.info("job #%s (%s): started", info.id, info.label)
        raised = self.runner.execute(info, lambda report: handler(self.service, dict(info.spec or {}), report))
        if isinstance(raised, KeyboardInterrupt):
            raise raised
        return True

    def run(self, *, once: bool = False) -> int:
        """Work until :meth:`stop` (or, ``once``, until the queue is empty); how many jobs ran."""
        done = 0
        while not self._stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # noqa: BLE001 - a catalog hiccup must not end the worker: log, wait, retry
                log.exception("worker: could not take or record a job")
                ran = False
                if once:
                    raise
            if ran:
                done += 1
                continue
            if once:
                break
            self.runner.wake.wait(self.poll_s)
            self.runner.wake.clear()
        return done

    def start(self) -> Worker:
        """Run in a daemon thread of this process (the web app's, the API server's)."""
        self._thread = threading.Thread(target=self.run, name="lloco-worker", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the job under way (if any) ends."""
        self._stop.set()
        self.runner.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


def start_worker(runner: JobRunner, service: LlocoService) -> Worker:
    """Run ``runner``'s queued jobs (and other processes') in a worker thread of this process, with
    ``service``; ``runner.close()`` stops it. A runner has one worker at most."""
    if runner.worker is None:
        runner.worker = Worker(service, runner).start()
    return runner.worker  # type: ignore[return-value]
