"""Ingestion on a Ray cluster (issue 14, item 6): `lloco ingest --engine ray`.

The expensive part of ingestion — parsing, chunking, embedding and compressing a document — runs on
Ray worker actors, each of which loads the models once (from the same settings, so they derive the
same chunks and vectors as this process would: :class:`indexing.pipeline.Deriver` is shared by both
engines); the catalog, the FAISS index and the summary store are written only here, by the driver,
one document per transaction, in the files' order. A worker that dies mid-document is restarted by
Ray and its document derived again (``max_restarts``/``max_task_retries``): nothing of it was written,
so the collection is as it was until the driver writes the document whole.

Workers receive each file's bytes (no shared filesystem needed) and need lloco and its models
installed where they run (docs/deployment.md). Without Ray installed (`pip install -e .[ray]`) the
engine is refused with that advice.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import Settings
from app.core.model_loading import load_compressor_from, load_decoder_from, load_embedder_from, make_deriver
from indexing.loaders import DocumentError, expand_paths, file_sha256
from model.errors import InvalidInputError

if TYPE_CHECKING:
    from indexing.catalog import Collection
    from indexing.pipeline import Deriver, IngestResult, Pipeline, ProgressCallback

RESTARTS = 2  # a worker killed mid-document is restarted, and its document derived again, this many times


@dataclass(frozen=True)
class SettingsDeriver:
    """Builds, on a worker, the :class:`Deriver` this process's service would use: the models the
    settings name, the collection's chunking. Picklable (settings as a dict)."""

    settings: dict[str, Any]
    chunk_tokens: int
    chunk_overlap: int

    def __call__(self) -> Deriver:
        s = Settings(**self.settings)
        decoder = load_decoder_from(s)
        return make_deriver(s, embedder=load_embedder_from(s), compressor=load_compressor_from(s, decoder),
                            encode=decoder.encode, chunk_tokens=self.chunk_tokens, chunk_overlap=self.chunk_overlap)


class DeriveWorker:
    """A Ray actor: the models loaded once, documents derived from their bytes."""

    def __init__(self, make_deriver: Callable[[], Deriver], threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.deriver = make_deriver()

    def derive(self, name: str, data: bytes) -> Any:
        """The file's :class:`Derived` document, or the :class:`DocumentError` message for a bad file."""
        with tempfile.TemporaryDirectory(prefix="lloco-ray-") as tmp:
            path = Path(tmp) / name
            path.write_bytes(data)
            try:
                derived = self.deriver.derive(self.deriver.load(path))
            except DocumentError as exc:
                return str(exc)
        return derived

    def pid(self) -> int:
        return os.getpid()


def require_ray() -> Any:
    """The ``ray`` module, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise InvalidInputError("the 'ray' ingestion engine needs Ray: `pip install -e .[ray]` (or `pip install ray`), "
                                "or ingest with the default local engine") from None
    return ray


def start_ray(s: Settings) -> Any:
    """Ray connected: to the ``ray_address`` setting's cluster, or a local one started for this process."""
    ray = require_ray()
    if not ray.is_initialized():
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if s.ray_address:
            options["address"] = s.ray_address
        else:
            options["num_cpus"] = s.ray_workers * s.ray_worker_threads
        try:
            ray.init(**options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InvalidInputError(f"could not start or reach Ray ({s.ray_address or 'local'}): {exc}") from None
    return ray


def ray_ingest(s: Settings, pipeline: Pipeline, row: Collection, paths: list[Path], *,
               progress: ProgressCallback | None = None,
               make_deriver: Callable[[], Deriver] | None = None) -> list[IngestResult]:
    """Ingest ``paths`` into collection ``row`` through ``pipeline`` (one that writes documents derived
    elsewhere): documents derived by Ray workers with the models ``s`` names, written here in order.
    ``make_deriver``: what each worker builds its models with (default: :class:`SettingsDeriver`)."""
    from indexing.pipeline import IngestResult

    files = expand_paths(paths)
    report = progress or (lambda _p: None)
    make = make_deriver or SettingsDeriver(s.model_dump(mode="json"), row.chunk_tokens, row.chunk_overlap)
    ray, workers = require_ray(), []
    max_bytes = s.max_file_bytes
    results: list[IngestResult | None] = [None] * len(files)
    todo: list[tuple[int, float]] = []  # (file index, start time) of the files to derive
    for i, path in enumerate(files):
        started, step = time.perf_counter(), _reporter(report, path, i, len(files))
        step("parse")
        if not path.is_file() or path.stat().st_size > max_bytes:  # the loader says precisely why, here
            results[i] = _refused(pipeline, path, started, max_bytes)
            continue
        try:
            existing = pipeline.existing(file_sha256(path))
        except OSError as exc:
            results[i] = pipeline.failed(path, f"{path.name}: cannot be read ({exc})", started, step)
            continue
        if existing is not None and existing.status == "ready":
            results[i] = IngestResult(str(path), "skipped", existing.id, n_pages=existing.n_pages)
            step("done")
            continue
        todo.append((i, started))
    if not todo:
        return [r for r in results if r is not None]
    start_ray(s)  # Ray and the workers start only when there is something to derive
    remote = ray.remote(num_cpus=s.ray_worker_threads, max_restarts=RESTARTS, max_task_retries=RESTARTS)(DeriveWorker)
    in_flight: deque[tuple[int, float, Any]] = deque()
    try:
        workers.extend(remote.remote(make, s.ray_worker_threads) for _ in range(min(s.ray_workers, len(todo))))
        queue, submitted = deque(todo), 0
        while queue or in_flight:
            # at most two documents per worker in flight: the files' bytes wait on disk, not in Ray's store
            while queue and len(in_flight) < 2 * len(workers):
                i, started = queue.popleft()
                try:
                    data = files[i].read_bytes()
                except OSError as exc:
                    results[i] = pipeline.failed(files[i], f"{files[i].name}: cannot be read ({exc})", started,
                                                 _reporter(report, files[i], i, len(files)))
                    continue
                in_flight.append((i, started, workers[submitted % len(workers)].derive.remote(files[i].name, data)))
                submitted += 1
            if in_flight:  # written in the files' order, each as soon as it is derived
                i, started, future = in_flight.popleft()
                results[i] = _write(ray, pipeline, files[i], future, started, _reporter(report, files[i], i, len(files)))
    finally:
        for worker in workers:
            ray.kill(worker)
    return [r for r in results if r is not None]


def _write(ray: Any, pipeline: Any, path: Path, future: Any, started: float, step: Callable[..., None]) -> IngestResult:
    """Wait for a worker's document and write it (or record why there is none)."""
    try:
        derived = ray.get(future)
    except ray.exceptions.RayError as exc:
        return pipeline.failed(path, f"{path.name}: its Ray worker failed ({type(exc).__name__}: "
                               f"{str(exc).splitlines()[0][:300]})", started, step)
    if isinstance(derived, str):  # a bad file: the loader's reason
        return pipeline.failed(path, derived, started, step)
    return pipeline.write(replace(derived, doc=replace(derived.doc, path=path)), started, step)  # the worker read a copy


def _reporter(report: ProgressCallback, path: Path, i: int, n: int) -> Callable[..., None]:
    from indexing.pipeline import Progress

    return lambda stage, done=0, total=0: report(Progress(path.name, i, n, stage, done, total))


def _refused(pipeline: Any, path: Path, started: float, max_bytes: int) -> IngestResult:
    """The loader's own reason for a path that is not a regular file or is over the size limit."""
    from indexing.loaders import load_document

    try:
        load_document(path, max_bytes=max_bytes)
        reason = f"{path.name}: cannot be read"
    except DocumentError as exc:
        reason = str(exc)
    return pipeline.failed(path, reason, started, lambda *_a, **_k: None)
