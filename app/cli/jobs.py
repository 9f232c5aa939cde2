"""``lloco jobs list|cancel`` and ``lloco worker``: a thin shell over :mod:`app.jobs.store`,
:mod:`app.jobs.handlers` and :mod:`app.jobs.worker`."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from app.cli.shared import data_table, out, service
from app.jobs.eta import time_left_text

jobs_app = typer.Typer(no_args_is_help=True, help="Background jobs (ingest, rebuild, training, evaluation): list, cancel.")
STATUSES = ("queued", "running", "done", "failed", "cancelled")


@jobs_app.command("list")
def jobs_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print the jobs as JSON.")] = False,
    status: Annotated[str | None, typer.Option(help=f"Only jobs with this status: {', '.join(STATUSES)}.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="The newest N jobs.")] = 50,
) -> None:
    """Jobs recorded in the catalog, newest first (from every process: CLI, web app, API, workers)."""
    import json
    from dataclasses import asdict

    from app.jobs.store import list_jobs
    from model.errors import InvalidInputError

    if status is not None and status not in STATUSES:
        raise InvalidInputError(f"unknown status {status!r}: choose one of {', '.join(STATUSES)}")
    jobs = list_jobs(service().sessions, limit=limit, status=status)
    if as_json:
        print(json.dumps([{**asdict(j), "eta_s": j.eta_s} for j in jobs], indent=2, default=str))
        return
    table = data_table("id", "kind", "status", "collection", "progress", "left", "queued at", "label", "message / error")
    for j in jobs:
        progress = "-" if j.fraction is None else f"{j.fraction:.0%}"
        table.add_row(str(j.id), j.kind, j.status, j.collection or "-", progress, time_left_text(j.eta_s, running=j.status == "running", short=True) or "-",
                      j.created_at.strftime("%Y-%m-%d %H:%M:%S"), j.label,
                      j.error or (j.message if j.status in ("queued", "running") else ""))
    out.print(table)


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[int, typer.Argument(help="The job's id (`lloco jobs list`).")]) -> None:
    """Cancel a job: a queued one at once, a running one at its next progress report (a document being
    ingested is rolled back)."""
    from app.jobs.lifecycle import cancel_job

    now = cancel_job(service().sessions, job_id)
    if now.status == "cancelled":
        out.print(f"job #{job_id} ({now.label}): cancelled before it started", highlight=False)
    elif now.status == "running":
        out.print(f"job #{job_id} ({now.label}): cancel requested", highlight=False)
    else:
        out.print(f"job #{job_id} is already {now.status}: nothing to cancel", highlight=False)


def worker(
    once: Annotated[bool, typer.Option("--once", help="Run the queued jobs, then exit (instead of waiting for more).")] = False,
    poll: Annotated[float, typer.Option(min=0.1, max=3600, help="Seconds between looks at the queue when idle.")] = 1.0,
) -> None:
    """Run queued jobs (ingestion, rebuild, training, evaluation) one at a time, until Ctrl-C.

    Start it beside a web app or API server whose embedded_worker setting is off, or several on one
    catalog; Ctrl-C puts the job under way back in the queue, for the next worker to resume."""
    from app.jobs.runner import JobRunner
    from app.jobs.worker import Worker

    svc = service()
    runner = JobRunner(sessions=svc.sessions)  # resumes the jobs of workers that died
    out.print(f"worker (pid {os.getpid()}) on {svc.settings.resolved_database_url}: waiting for jobs"
              + (" (until the queue is empty)" if once else "; Ctrl-C stops it"), highlight=False)
    try:
        done = Worker(svc, runner, poll_s=poll).run(once=once)
    except KeyboardInterrupt:
        out.print("stopped: the job under way, if any, is queued again", highlight=False)
        raise typer.Exit(130) from None
    out.print(f"{done} job(s) run", highlight=False)
