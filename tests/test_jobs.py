"""Background jobs for the web UI (app/jobs/runner.py) and the ingestion progress they report."""

from __future__ import annotations

import threading

from app.jobs.runner import JobRunner
from model.errors import InvalidInputError


def test_a_job_runs_in_the_background_and_reports_progress():
    runner, gate = JobRunner(), threading.Event()

    def work(report):
        report(0.5, "half way")
        gate.wait(10)
        return 42

    job = runner.submit("ingest", "ingest 1 file", work, collection="notes")
    assert job.running and runner.busy("notes") is job and runner.busy("other") is None
    for _ in range(100):
        if job.message == "half way":
            break
        threading.Event().wait(0.01)
    assert (job.fraction, job.message) == (0.5, "half way")
    gate.set()
    assert job.wait(10) and job.status == "done" and job.result == 42 and job.fraction == 1.0
    assert runner.busy("notes") is None and job.seconds >= 0 and runner.get(job.id) is job


def test_errors_become_the_jobs_message():
    runner = JobRunner()

    def refused(report):
        raise InvalidInputError("give a QA file")

    def crashed(report):
        raise ZeroDivisionError("boom")

    a, b = runner.submit("train", "a", refused), runner.submit("eval", "b", crashed)
    assert a.wait(10) and b.wait(10)
    assert (a.status, a.error) == ("failed", "give a QA file")
    assert (b.status, b.error) == ("failed", "ZeroDivisionError: boom")
    assert [j.label for j in runner.jobs()] == ["b", "a"] and [j.label for j in runner.jobs(kind="train")] == ["a"]


def test_fractions_are_clamped_and_old_finished_jobs_forgotten():
    runner = JobRunner(keep=3)
    jobs = [runner.submit("eval", str(n), lambda report: report(7.0, "over")) for n in range(5)]
    assert all(j.wait(10) for j in jobs)
    runner.submit("eval", "last", lambda report: None).wait(10)
    assert len(runner.jobs()) <= 4 and runner.jobs()[0].label == "last"


def test_ingestion_progress_names_the_file_and_its_stage():
    from app.jobs.runner import ingest_reporter, stage_line
    from indexing.pipeline import Progress

    seen = []
    on_progress = ingest_reporter(lambda fraction, message, eta_s=None: seen.append((fraction, message)))
    on_progress(Progress("a.pdf", 0, 2, "parse"))
    on_progress(Progress("a.pdf", 0, 2, "compress", 5, 10))
    on_progress(Progress("a.pdf", 0, 2, "done", 10, 10))
    on_progress(Progress("b.md", 1, 2, "embed", 0, 4))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[2] == 0.5
    assert seen[1][1] == "a.pdf (file 1 of 2): parse ✓ → chunk ✓ → embed ✓ → **compress** → index (5/10 chunks)"
    assert seen[3][1].startswith("b.md (file 2 of 2): parse ✓ → chunk ✓ → **embed**")
    assert stage_line("done") == "parse ✓ → chunk ✓ → embed ✓ → compress ✓ → index ✓"
