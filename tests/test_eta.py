"""Issue 27 item 4: the time an ingestion has left comes from the throughput measured per stage, moves
with every batch, says it can't tell ("estimating") until it can, and is the same in every process."""

from __future__ import annotations

import threading

import pytest

from app.jobs import store as job_store
from app.jobs.eta import IngestClock, StageRates, rates_for
from app.jobs.runner import JobRunner, ingest_reporter
from indexing.pipeline import Progress


class Clock:
    """A scripted monotonic clock: ``at(t)`` sets it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def one_file(clock: IngestClock, t: Clock, *, n: int = 100, file_bytes: int = 1000, later: int = 0, index: int = 0,
             start: float = 0.0, embed_s: float = 1.0, compress_s: float = 4.0) -> list[float | None]:
    """Feed a file's events as the pipeline sends them (embed and compress in batches of 25 chunks; 2 s
    of parsing, 1 s of chunking, 1 s of writing); the time left after each event."""
    events: list[tuple[float, Progress]] = []
    step = 25

    def at(dt: float, stage: str, done: int = 0, total: int = 0) -> None:
        events.append((dt, Progress("f.pdf", index, 3, stage, done, total, file_bytes, later)))

    at(0.0, "parse")
    at(2.0, "chunk")
    for done in range(0, n, step):
        at(1.0 if done == 0 else embed_s, "embed", done, n)
    for done in range(0, n + 1, step):
        at(embed_s if done == 0 else compress_s, "compress", done, n)
    at(0.0, "index", 0, n)
    at(1.0, "done", n, n)
    t.now, left = start, []
    for dt, event in events:
        t.now += dt
        left.append(clock.observe(event))
    return left


def test_the_first_file_says_estimating_until_its_slow_stage_is_measured_then_counts_down_per_batch():
    t = Clock()
    left = one_file(IngestClock(StageRates(), clock=t), t)
    # parse, chunk, embed 0 (nothing measured), embed 25/50/75 (compress not measured yet), compress 0/100
    assert left[:7] == [None] * 7
    # compress 25/100: 4 s per 25 chunks measured -> 75 chunks x 0.16 s; writing is not measured yet (0)
    assert left[7] == pytest.approx(75 * 0.16)
    assert left[7:10] == sorted(left[7:10], reverse=True) and left[9] == pytest.approx(25 * 0.16)
    assert left[-1] == 0.0  # done, nothing after it


def test_a_collections_second_job_knows_its_pace_from_the_first_batch():
    t, rates = Clock(), StageRates()
    one_file(IngestClock(rates, clock=t), t)
    left = one_file(IngestClock(rates, clock=t), t, start=100.0)
    # chunk: its chunk count is not known yet; at "embed 0/100" it is: 100 x (embed + compress + index)
    assert left[1] is None
    expected = 100 * (1.0 / 25 + 4.0 / 25 + 1.0 / 100)
    assert left[2] == pytest.approx(expected)
    assert left[3] == pytest.approx(expected - 1.0)  # one embed batch later, 1 s less


def test_the_rate_moves_with_the_batches():
    t = Clock()
    slow = one_file(IngestClock(StageRates(), clock=t), t, compress_s=8.0)
    t2 = Clock()
    fast = one_file(IngestClock(StageRates(), clock=t2), t2)
    assert slow[7] == pytest.approx(2 * fast[7])
    rates = StageRates(smoothing=0.5)
    rates.observe("compress", 4.0, 25)
    rates.observe("compress", 8.0, 25)
    assert rates.get("compress") == pytest.approx((0.16 + 0.32) / 2)  # a moving average, not the last batch


def test_later_files_are_estimated_from_their_size_once_a_file_is_done():
    t = Clock()
    clock = IngestClock(StageRates(), clock=t)
    first = one_file(clock, t, later=3000)  # two more files, 3000 bytes together
    per_chunk = 1.0 / 25 + 4.0 / 25 + 1.0 / 100 + (2.0 + 1.0) / 100  # parse and chunk measured too
    assert all(x is None for x in first[:-1])  # no file done yet: their chunks per byte unknown
    assert first[-1] == pytest.approx(3000 * 100 / 1000 * per_chunk)  # done: 100 chunks from 1000 bytes
    second = one_file(clock, t, index=1, later=1000, start=t.now)
    # at its parse: this file (1000 bytes -> 100 chunks) and the next one, at the first file's pace
    assert second[0] == pytest.approx(2 * 100 * per_chunk, rel=0.05)


def test_a_job_keeps_its_estimate_in_the_catalog_for_every_process(service, monkeypatch):
    runner, reported, gate = JobRunner(sessions=service.sessions), threading.Event(), threading.Event()

    def work(report):
        report(0.1, "compressing", eta_s=120.0)
        reported.set()
        gate.wait(10)

    job = runner.submit("ingest", "slow", work)
    assert reported.wait(10)
    stored = job_store.get_job(service.sessions, job.id)
    assert stored.eta_estimate == 120.0 and 110 < stored.eta_s <= 120 and 110 < job.eta_s <= 120
    now = job_store.time.time()
    monkeypatch.setattr(job_store.time, "time", lambda: now + 30)  # half a minute on, nothing reported
    assert 80 < job_store.get_job(service.sessions, job.id).eta_s <= 90 and 80 < job.eta_s <= 90
    monkeypatch.setattr(job_store.time, "time", lambda: now + 600)  # slower than it thought: it no longer knows
    assert job.eta_s is None
    monkeypatch.undo()
    gate.set()
    assert job.wait(10) and job.eta_s is None


def test_a_job_that_cannot_tell_says_so(service):
    seen, done = [], threading.Event()

    def work(report):
        report(0.5, "parsing", eta_s=None)
        seen.append(job.eta_s)
        done.set()

    job = JobRunner(sessions=service.sessions).submit("ingest", "x", work)
    assert done.wait(10) and seen == [None]  # not the pace so far (which would say "about 0 s")


def test_a_real_ingestion_reports_a_time_left_that_moves(service, tmp_path):
    """The pipeline's own events through the job reporter: the estimate is known before the end, and
    the rates are kept for the collection's next job."""
    service.create_collection("eta")
    doc = tmp_path / "long.txt"
    doc.write_text(" ".join(f"Sentence {i} of a long report about revenue." for i in range(1500)))
    seen = []
    on_progress = ingest_reporter(lambda f, m, eta_s=None: seen.append((m, eta_s)), rates=rates_for("eta-test"))
    service.ingest("eta", [doc], progress=on_progress)
    known = [eta for message, eta in seen if eta is not None]
    assert seen[0][1] is None and "compress" in [m.split("**")[1] for m, _ in seen if "**" in m]
    assert len(known) >= 2 and len(set(known)) >= 2 and seen[-1][1] == 0.0
    assert rates_for("eta-test").get("compress") is not None and rates_for("eta-test").get("embed") is not None
