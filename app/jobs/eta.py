"""The time an ingestion or rebuild has left, from the throughput measured stage by stage (issue 27).

A job's overall fraction is a poor clock for ingestion: its stages take very different times (the
compressor runs a decoder per chunk, chunking is string work), so "20 % done after 4 s" said
"about 16 s left" of a 294 s job. Instead, :class:`IngestClock` follows the pipeline's progress
events and measures each stage's seconds per chunk: from consecutive batch reports within a stage
(embed, compress) and from a whole stage's duration once the file's chunk count is known (parse,
chunk, index). Rates are a moving average (:class:`StageRates`): the first batches set them, later
ones move them. The time left is then

    current stage: chunks left x its rate (a stage without batches: its expected time - time in it)
    later stages of this file: chunks x their rates
    later files: their bytes x chunks per byte (measured on this job's files) x every stage's rate

and None -- "estimating" -- while any rate it needs is not measured yet. Rates measured by one job
seed the next job on the same collection in this process (:func:`rates_for`), so a second upload
knows its compression pace from its first batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from indexing.pipeline import WORK_STAGES

if TYPE_CHECKING:
    from indexing.pipeline import Progress

BATCHED = ("embed", "compress")  # stages that report their chunks as they go


@dataclass
class StageRates:
    """Seconds per chunk for each stage: the first measurement, then an exponential moving average
    (``smoothing``: the weight of each new measurement)."""

    smoothing: float = 0.3
    seconds_per_chunk: dict[str, float] = field(default_factory=dict)

    def observe(self, stage: str, seconds: float, chunks: int) -> None:
        if chunks <= 0 or seconds < 0:
            return
        rate, old = seconds / chunks, self.seconds_per_chunk.get(stage)
        self.seconds_per_chunk[stage] = rate if old is None else old + self.smoothing * (rate - old)

    def get(self, stage: str) -> float | None:
        return self.seconds_per_chunk.get(stage)


_shared: dict[str, StageRates] = {}
_shared_lock = threading.Lock()


def rates_for(collection: str | None) -> StageRates:
    """This process's rates for a collection (its models set the pace), shared by its jobs; a fresh
    one for None."""
    if collection is None:
        return StageRates()
    with _shared_lock:
        return _shared.setdefault(collection, StageRates())


@dataclass
class IngestClock:
    """Follows one job's progress events (:meth:`observe`) and says how many seconds it has left."""

    rates: StageRates = field(default_factory=StageRates)
    clock: Callable[[], float] = time.monotonic
    _last: Progress | None = None
    _last_at: float = 0.0
    _stage_started: float = 0.0
    _unbatched: dict[str, float] = field(default_factory=dict)  # this file's stages without batches: seconds
    _chunks_done: int = 0  # over this job's finished files
    _bytes_done: int = 0

    def observe(self, event: Progress) -> float | None:
        """Take a progress event (now) into account; the seconds left, or None while it can't tell."""
        now = self.clock()
        last, last_at = self._last, self._last_at
        self._last, self._last_at = event, now
        same_file = last is not None and last.file_index == event.file_index
        if same_file and last.stage == event.stage:
            if event.stage in BATCHED and event.done > last.done:
                self.rates.observe(event.stage, now - last_at, event.done - last.done)
            return self._left(event, now)
        if not same_file:
            self._unbatched = {}
        elif last.stage in BATCHED:  # its last batch ended now
            self.rates.observe(last.stage, now - last_at, last.total - last.done)
        else:
            self._unbatched[last.stage] = self._unbatched.get(last.stage, 0.0) + now - self._stage_started
        self._stage_started = now
        if event.total:  # the file's chunk count is known: its stages without batches so far have a rate
            for stage, seconds in self._unbatched.items():
                self.rates.observe(stage, seconds, event.total)
            self._unbatched = {}
            if event.stage == "done":
                self._chunks_done += event.total
                self._bytes_done += event.file_bytes
        return self._left(event, now)

    def _per_chunk(self, stages: tuple[str, ...]) -> float | None:
        """Seconds per chunk over ``stages``; None while a batched one is unmeasured (one without batches,
        a short string or write step, counts 0 until measured on the job's first file)."""
        if any(s in BATCHED and self.rates.get(s) is None for s in stages):
            return None
        return sum(self.rates.get(s) or 0.0 for s in stages)

    def _left(self, event: Progress, now: float) -> float | None:
        later = 0.0
        if event.later_bytes:
            per_chunk = self._per_chunk(WORK_STAGES)
            if not self._bytes_done or per_chunk is None:
                return None
            later = event.later_bytes * self._chunks_done / self._bytes_done * per_chunk
        if event.stage == "done":
            return later
        chunks = event.total or (event.file_bytes * self._chunks_done / self._bytes_done if self._bytes_done else 0)
        at = WORK_STAGES.index(event.stage)
        rate, after = self.rates.get(event.stage), self._per_chunk(WORK_STAGES[at + 1:])
        if not chunks or after is None or (rate is None and event.stage in BATCHED):
            return None
        if event.stage in BATCHED:
            here = (chunks - event.done) * rate
        else:
            here = max(chunks * (rate or 0.0) - (now - self._stage_started), 0.0)
        return here + chunks * after + later


def time_left_text(seconds: float | None, *, running: bool = True, short: bool = False) -> str:
    """How the web app and the CLI say a job's time left: 'about 20 s left', 'about 3 min left',
    'estimating time left' while it runs and can't tell yet, '' when it doesn't run; ``short`` (a
    table's "left" column): 'about 20 s', 'estimating'."""
    if not running:
        return ""
    if seconds is None:
        return "estimating" if short else "estimating time left"
    words = f"about {seconds:.0f} s" if seconds < 90 else f"about {seconds / 60:.0f} min"
    return words if short else f"{words} left"
