"""The durable queue (issue 12; migration 0008, app/jobs/handlers.py, app/jobs/worker.py): a queued job is
listed with its files as 'queued' documents, run by exactly one worker (a thread of the server or a
`lloco worker` process), cancelled while queued without a trace, resumed by the next worker when its
worker dies (a few times at most, then failed with the reason), and reports the time left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from app.jobs import store as job_store
from app.jobs.handlers import queue_ingest, queue_rebuild
from app.jobs.runner import JobRunner
from app.jobs.worker import Worker, start_worker
from tests.cli_runner import run_cli
from tests.conftest import MODEL_CACHE
from tests.fakes import make_pdf


@pytest.fixture
def service(any_backend_service):
    """Every test here runs on SQLite and on PostgreSQL (where a server is set)."""
    return any_backend_service


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch):
    monkeypatch.setattr(job_store, "HEARTBEAT_S", 0.0)  # every report reaches the catalog


def _files(tmp_path, n, *, words=30):
    folder = tmp_path / "in"
    folder.mkdir(exist_ok=True)
    out = []
    for i in range(n):
        path = folder / f"f{i}.txt"
        path.write_text(f"Document {i} tells of harbour {i} and its {i * 7} ships. " * words)
        out.append(path)
    return out


def _statuses(service, name="c"):
    return {d.filename: d.status for d in service.list_documents(name)}


def test_queued_files_are_listed_then_a_worker_ingests_them(service, tmp_path, monkeypatch, capsys):
    service.create_collection("c")
    runner = JobRunner(sessions=service.sessions)  # no worker: the job waits in the queue
    upload = tmp_path / "upload"
    upload.mkdir()
    paths = _files(tmp_path, 3)
    job = queue_ingest(runner, service, "c", paths, cleanup=upload, owner="ann")
    assert job.status == "queued" and runner.busy("c") is job
    assert _statuses(service) == {"f0.txt": "queued", "f1.txt": "queued", "f2.txt": "queued"}
    code, stdout, _ = run_cli(monkeypatch, capsys, "jobs", "list", "--json", "--status", "queued", service=service)
    [listed] = json.loads(stdout)
    assert code == 0 and (listed["id"], listed["owner"], listed["eta_s"]) == (job.id, "ann", None)
    with pytest.raises(Exception, match="no documents yet"):  # queued documents are not answerable yet
        service.ask("c", "how many ships?", mode="rag").read()

    assert Worker(service, runner).run(once=True) == 1
    assert job.wait(5) and job.status == "done"
    assert [r.status for r in job.result] == ["ingested"] * 3
    assert _statuses(service) == {"f0.txt": "ready", "f1.txt": "ready", "f2.txt": "ready"}
    stored = job_store.get_job(service.sessions, job.id)
    assert (stored.status, stored.attempts, stored.fraction) == ("done", 1, 1.0)
    assert not upload.exists()  # the upload's folder goes with the job
    assert service.check_collection("c") == []


def test_a_queued_job_cancelled_leaves_no_trace(service, tmp_path, monkeypatch, capsys):
    service.create_collection("c")
    runner = JobRunner(sessions=service.sessions)
    upload = tmp_path / "upload"
    upload.mkdir()
    job = queue_ingest(runner, service, "c", _files(tmp_path, 2), cleanup=upload)
    code, stdout, _ = run_cli(monkeypatch, capsys, "jobs", "cancel", str(job.id), service=service)
    assert code == 0 and "cancelled before it started" in " ".join(stdout.split())
    assert _statuses(service) == {} and not upload.exists()
    assert runner.get(job.id).status == "cancelled" and runner.busy("c") is None
    assert Worker(service, runner).run(once=True) == 0  # nothing left for a worker


def test_two_workers_run_each_job_exactly_once(service, tmp_path):
    names = [f"c{i}" for i in range(4)]
    runner = JobRunner(sessions=service.sessions)
    jobs = []
    for name in names:
        service.create_collection(name)
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.txt").write_text(f"Collection {name} holds one note about tides. " * 20)
        jobs.append(queue_ingest(runner, service, name, [tmp_path / name / "a.txt"]))
    jobs.append(queue_rebuild(runner, service, "c0"))
    counts = {}
    workers = [Worker(service, JobRunner(sessions=service.sessions)) for _ in range(2)]
    threads = [threading.Thread(target=lambda w=w: counts.__setitem__(id(w), w.run(once=True))) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(counts.values()) == len(jobs)
    stored = [job_store.get_job(service.sessions, j.id) for j in jobs]
    assert [(s.status, s.attempts) for s in stored] == [("done", 1)] * len(jobs)
    assert all(_statuses(service, n) == {"a.txt": "ready"} for n in names)


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _claimed_by_the_dead(service, job_id):
    """As if a worker process had claimed the job and died (kill -9) while running it."""
    with service.sessions.begin() as session:
        row = session.get(job_store.JobRecord, job_id)
        row.status, row.pid, row.attempts, row.message = "running", _dead_pid(), row.attempts + 1, "f1.txt: embed"


def test_a_job_whose_worker_died_is_resumed_then_failed_after_too_many_tries(service, tmp_path):
    service.create_collection("c")
    runner = JobRunner(sessions=service.sessions)
    job = queue_ingest(runner, service, "c", _files(tmp_path, 2))
    _claimed_by_the_dead(service, job.id)
    JobRunner(sessions=service.sessions)  # a restart of the server (or a new worker) looks first
    resumed = job_store.get_job(service.sessions, job.id)
    assert resumed.status == "queued" and "queued again" in resumed.message and "f1.txt: embed" in resumed.message
    assert Worker(service, JobRunner(sessions=service.sessions)).run(once=True) == 1
    done = job_store.get_job(service.sessions, job.id)
    assert (done.status, done.attempts) == ("done", 2) and _statuses(service) == {"f0.txt": "ready", "f1.txt": "ready"}

    extra = tmp_path / "g.txt"
    extra.write_text("A file whose every worker dies. " * 20)
    other = queue_ingest(runner, service, "c", [extra])
    for _ in range(job_store.MAX_ATTEMPTS):
        _claimed_by_the_dead(service, other.id)
        JobRunner(sessions=service.sessions)  # resumed until it has been started MAX_ATTEMPTS times
    failed = job_store.get_job(service.sessions, other.id)
    assert failed.status == "failed" and f"started {job_store.MAX_ATTEMPTS} times" in failed.error
    gone = {d.filename: d for d in service.list_documents("c")}["g.txt"]
    assert gone.status == "failed" and gone.error.startswith("not ingested: interrupted")
    assert service.check_collection("c") == []


def test_the_time_left_is_estimated_from_the_pace_so_far():
    assert job_store.eta_seconds(0.5, 10.0) == pytest.approx(10.0)
    assert job_store.eta_seconds(0.25, 30.0) == pytest.approx(90.0)
    assert job_store.eta_seconds(0.01, 30.0) is None and job_store.eta_seconds(None, 30.0) is None
    assert job_store.eta_seconds(1.0, 30.0) == 0.0


def test_a_running_job_reports_its_time_left(service):
    runner, reported, gate = JobRunner(sessions=service.sessions), threading.Event(), threading.Event()

    def work(report):
        time.sleep(1.0)  # at this pace it has about a second left: more than the checks below take
        report(0.5, "half way")
        reported.set()
        gate.wait(10)

    job = runner.submit("eval", "slow", work)
    assert reported.wait(10)
    stored = job_store.get_job(service.sessions, job.id)
    assert stored.eta_s is not None and stored.eta_s > 0 and job.eta_s is not None and job.eta_s > 0
    gate.set()
    assert job.wait(10) and job_store.get_job(service.sessions, job.id).eta_s is None


@pytest.mark.integration
def test_a_killed_worker_process_is_resumed_by_the_next(tmp_path, tiny_folder):
    """Two real `lloco worker` processes on one home: the first is killed with SIGKILL mid-ingest; the
    second resumes the job, skips the documents already in, and the collection checks clean."""
    from app.config import Settings
    from app.core.service import LlocoService

    env = {**os.environ, "LLOCO_HOME": str(tmp_path / "home"), "LLOCO_DECODER": str(tiny_folder),
           "LLOCO_MODEL_CACHE": str(MODEL_CACHE), "LLOCO_COMPRESSOR": "untrained", "LLOCO_CHUNK_TOKENS": "48",
           "LLOCO_CHUNK_OVERLAP": "8", "LLOCO_SUMMARY_TOKENS": "4", "LLOCO_DEVICE": "cpu", "LLOCO_DTYPE": "float32",
           "OMP_NUM_THREADS": "1"}
    lloco = [sys.executable, "-m", "app"]
    files = [make_pdf(tmp_path / f"p{i}.pdf", [f"Page about harbour {i} and its lamps. " * 40] * 2) for i in range(16)]
    for args in (["collections", "create", "c"], ["ingest", "c", *map(str, files), "--queue"]):
        made = subprocess.run([*lloco, *args], env=env, capture_output=True, text=True, check=False)
        assert made.returncode == 0, made.stderr[-2000:]
    settings = Settings(home=tmp_path / "home", decoder=str(tiny_folder), compressor="untrained",
                        model_cache=MODEL_CACHE, chunk_tokens=48, chunk_overlap=8, summary_tokens=4)
    sessions = LlocoService(settings).sessions
    first = subprocess.Popen([*lloco, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:  # kill once some documents are in and the job is still running
            [job] = job_store.list_jobs(sessions)
            ready = sum(1 for d in LlocoService(settings).list_documents("c") if d.status == "ready")
            if job.status == "running" and 2 <= ready:
                break
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(30)
    finally:
        first.kill()
    assert job_store.get_job(sessions, job.id).status == "running"  # what the dead worker left
    second = subprocess.run([*lloco, "worker", "--once"], env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    stored = job_store.get_job(sessions, job.id)
    assert (stored.status, stored.attempts) == ("done", 2)
    service = LlocoService(settings)
    docs = service.list_documents("c")
    assert len(docs) == 16 and {d.status for d in docs} == {"ready"}
    assert service.check_collection("c") == []
    results = stored.result
    assert sum(r["status"] == "skipped" for r in results) >= 2  # resumed: what the first worker ingested is kept


def test_a_stopped_worker_puts_its_job_back_in_the_queue(service, tmp_path, monkeypatch):
    """Ctrl-C on `lloco worker`: the job under way is queued again with its files, and resumed."""
    service.create_collection("c")
    runner = JobRunner(sessions=service.sessions)
    upload = tmp_path / "upload"
    upload.mkdir()
    job = queue_ingest(runner, service, "c", _files(tmp_path, 2), cleanup=upload)

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(service), "ingest", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Worker(service, runner).run_once()
    monkeypatch.undo()
    stored = job_store.get_job(service.sessions, job.id)
    assert stored.status == "queued" and stored.message.startswith("queued again")
    assert upload.exists() and set(_statuses(service).values()) == {"queued"}  # kept to resume
    assert Worker(service, JobRunner(sessions=service.sessions)).run(once=True) == 1
    done = job_store.get_job(service.sessions, job.id)
    assert (done.status, done.attempts) == ("done", 2) and set(_statuses(service).values()) == {"ready"}
    assert not upload.exists()


def test_waiting_on_a_queued_job_survives_its_worker_taking_it_over(service, tmp_path):
    """A page waits on a job it queued while this process's worker takes it (the wait switches from
    following the catalog to the worker's own completion, without a race)."""
    service.create_collection("c")
    runner = JobRunner(sessions=service.sessions)
    jobs = [queue_ingest(runner, service, "c", [path]) for path in _files(tmp_path, 3)]
    start_worker(runner, service)
    try:
        assert all(job.wait(120) and job.status == "done" for job in jobs)
    finally:
        runner.close()
