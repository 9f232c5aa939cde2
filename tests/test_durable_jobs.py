"""Jobs in the catalog (issue 12; app/jobs/store.py, migration 0006): recorded with progress and
result, listed and cancelled from any process (`lloco jobs`), a cancelled ingest keeps the
documents finished before it and rolls back the one under way, and a job whose process died is
marked failed with its reason when a runner starts, never left running."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import pytest

from app.jobs import store as job_store
from app.jobs.runner import JobCancelled, JobRunner, ingest_reporter
from tests.cli_runner import run_cli


@pytest.fixture
def service(any_backend_service):
    """Every test here runs on SQLite and on PostgreSQL (where a server is set)."""
    return any_backend_service


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch):
    monkeypatch.setattr(job_store, "HEARTBEAT_S", 0.0)  # every report reaches the catalog


def test_a_job_is_recorded_with_its_progress_and_result(service):
    runner, gate, seen = JobRunner(sessions=service.sessions), threading.Event(), threading.Event()

    def work(report):
        report(0.25, "a quarter")
        seen.set()
        gate.wait(10)
        return {"documents": 3}

    job = runner.submit("rebuild", "rebuild notes", work, collection="notes", owner="ann")
    assert seen.wait(10)
    [stored] = job_store.list_jobs(service.sessions)
    assert (stored.id, stored.status, stored.fraction, stored.message, stored.owner) == (job.id, "running", 0.25, "a quarter", "ann")
    gate.set()
    assert job.wait(10)
    stored = job_store.get_job(service.sessions, job.id)
    assert (stored.status, stored.fraction, stored.result, stored.error) == ("done", 1.0, {"documents": 3}, None)
    assert stored.finished_at is not None


def test_a_cancel_from_another_process_stops_the_job_at_its_next_report(service):
    runner, started = JobRunner(sessions=service.sessions), threading.Event()

    def work(report):
        for i in range(1000):
            report(i / 1000, f"step {i}")
            started.set()
            threading.Event().wait(0.01)
        return "finished"

    job = runner.submit("eval", "long", work)
    assert started.wait(10)
    job_store.request_cancel(service.sessions, job.id)  # what `lloco jobs cancel` does, in any process
    assert job.wait(10) and job.status == "cancelled" and job.error.startswith("cancelled at: step")
    assert job_store.get_job(service.sessions, job.id).status == "cancelled"
    assert job_store.request_cancel(service.sessions, job.id).status == "cancelled"  # finished: left as it is


def test_a_cancelled_ingest_keeps_finished_documents_and_rolls_back_the_current_one(service, pdf_factory):
    service.create_collection("c")
    pdfs = [pdf_factory(f"d{i}.pdf", [f"Document {i} is about lamps number {i}."] * 2) for i in range(3)]
    runner = JobRunner(sessions=service.sessions)

    def work(report):
        to_job = ingest_reporter(report)

        def progress(event):
            if event.file_index == 1 and event.stage == "embed":  # the second document, half way
                runner.cancel(runner.jobs(kind="ingest")[0].id)
            to_job(event)

        return service.ingest("c", pdfs, progress=progress)

    with pytest.raises(JobCancelled):
        runner.run("ingest", "ingest 3", work, collection="c")
    assert [d.filename for d in service.list_documents("c")] == ["d0.pdf"]  # d1 rolled back, d2 never started
    info = service.get_collection("c")
    assert info.n_chunks == service.list_documents("c")[0].n_chunks
    assert service.ask("c", "lamps?", mode="rag", top_k=4).read().citations[0].document == "d0.pdf"
    [stored] = job_store.list_jobs(service.sessions)
    assert stored.status == "cancelled"
    assert [r.status for r in service.ingest("c", pdfs)] == ["skipped", "ingested", "ingested"]  # run it again


def test_a_job_whose_process_died_is_marked_failed_on_the_next_start(service):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)  # that process has exited
    job_id = job_store.record_start(service.sessions, kind="ingest", label="ingest 100 pages", collection="c", owner=None)
    with service.sessions.begin() as session:
        from indexing.job_catalog import JobRecord

        row = session.get(JobRecord, job_id)
        row.pid, row.message = pid, "report.pdf: compress 40/120"
    mine = job_store.record_start(service.sessions, kind="eval", label="still mine", collection=None, owner=None)
    JobRunner(sessions=service.sessions)  # what the web app, the API and the CLI do when they start
    failed = job_store.get_job(service.sessions, job_id)
    assert failed.status == "failed" and failed.error.startswith("interrupted: the process running it")
    assert "report.pdf: compress 40/120" in failed.error
    assert job_store.get_job(service.sessions, mine).status == "running"  # this process is alive


def test_cli_lists_and_cancels_jobs_and_records_its_own_ingest(service, pdf_factory, monkeypatch, capsys):
    service.create_collection("c")
    code, _, err = run_cli(monkeypatch, capsys, "ingest", "c", str(pdf_factory("a.pdf", ["Lamps."])), service=service)
    assert code == 0, err
    code, out, _ = run_cli(monkeypatch, capsys, "jobs", "list", "--json", service=service)
    [job] = json.loads(out)
    assert (job["kind"], job["status"], job["collection"]) == ("ingest", "done", "c")
    assert job["result"][0]["status"] == "ingested"
    code, out, _ = run_cli(monkeypatch, capsys, "jobs", "cancel", str(job["id"]), service=service)
    assert code == 0 and "already done" in out
    code, _, err = run_cli(monkeypatch, capsys, "jobs", "cancel", "999", service=service)
    assert code == 2 and "no job #999" in err
