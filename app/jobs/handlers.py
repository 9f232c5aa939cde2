"""What each kind of queued job does, from its JSON spec: ingest, rebuild, train (a collection's
adapter) and eval. The web app, the API and `lloco ingest --queue` queue a spec
(:func:`queue_ingest`, :func:`queue_rebuild`, :func:`queue_train`, :func:`queue_eval`); a worker (:mod:`app.jobs.worker`, in the server process or `lloco worker`) runs it
with :data:`HANDLERS`. One place turns each kind's progress into a job's (fraction, message), so
every page and endpoint reports a job the same way.

An ingestion job lists its files as 'queued' documents from the moment it is queued; whatever way
it ends without ingesting them (cancelled, failed, interrupted too often) settles those rows
(:func:`app.jobs.lifecycle.settle`): removed when cancelled, failed with the reason otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.jobs.eta import rates_for
from app.jobs.lifecycle import cleaned_up_at_the_end, settle_documents
from app.jobs.runner import JobCancelled, Report, ingest_reporter
from app.training.calibrate import recalibrate
from app.training.train import train_collection_adapter

if TYPE_CHECKING:

    from app.config import Settings
    from app.jobs.runner import Job, JobRunner
    from app.core.service import LlocoService

Handler = Callable[["LlocoService", dict[str, Any], Report], Any]


def new_upload_folder(settings: Settings, prefix: str = "lloco-upload-") -> Path:
    """A new folder under the home's uploads for files a queued job will read (kept until the job ends:
    pass it as the job's ``cleanup``), so a restart resumes the job with them."""
    import tempfile

    settings.uploads_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=settings.uploads_dir))


def run_ingest(service: LlocoService, spec: dict[str, Any], report: Report) -> list:
    """spec: collection, paths, documents (its queued rows), cleanup (a folder to remove once the job
    has ended, e.g. the upload's). The results name each file by its name (an upload's temporary
    folder is gone)."""
    with cleaned_up_at_the_end(spec):
        try:
            results = service.ingest(spec["collection"], [Path(p) for p in spec["paths"]],
                                     progress=ingest_reporter(report, rates=rates_for(spec["collection"])))
        except JobCancelled:
            settle_documents(service.sessions, spec, error=None)
            raise
        except KeyboardInterrupt:  # the worker was stopped: the job is queued again, its rows stay queued
            raise
        except BaseException as exc:
            settle_documents(service.sessions, spec, error=f"not ingested: {exc}")
            raise
    return [replace(r, path=Path(r.path).name) for r in results]


def run_rebuild(service: LlocoService, spec: dict[str, Any], report: Report) -> str:
    """spec: collection."""

    on_progress = ingest_reporter(report, rates=rates_for(spec["collection"]), noun="document")
    result = service.rebuild_collection(spec["collection"], progress=on_progress)
    report(None, "recalibrating the answer thresholds", eta_s=None)  # chosen on the old chunks: choose again
    again = recalibrate(service, spec["collection"])
    return f"{result.documents} documents, {result.chunks} chunks" + (", thresholds recalibrated" if again else "")


def run_train(service: LlocoService, spec: dict[str, Any], report: Report) -> Any:
    """spec: collection, qa_file (or None), synthetic, steps, cleanup."""
    steps = int(spec["steps"])

    def on_step(record: dict[str, Any]) -> None:
        step, total = record.get("step"), record.get("steps") or steps
        loss = record.get("loss")
        report(step / total if step is not None else None,
               f"step {step}/{total}" + (f", loss {loss:.3f}" if isinstance(loss, float) else ""))

    report(None, "preparing the training examples")
    with cleaned_up_at_the_end(spec):
        return train_collection_adapter(service, spec["collection"], qa_file=Path(spec["qa_file"]) if spec.get("qa_file") else None,
                                     synthetic=int(spec.get("synthetic", 0)), steps=steps, progress=on_step)


def run_eval_job(service: LlocoService, spec: dict[str, Any], report: Report) -> int:
    """spec: the fields of :class:`app.eval.runner.EvalSpec`."""
    from app.eval.runner import EvalProgress, EvalSpec, run_eval

    def on_progress(event: EvalProgress) -> None:
        if event.stage == "load":
            report(None, event.item)
            return
        what = "documents ingested" if event.stage == "ingest" else "answers"
        share = event.done / event.total if event.total else 0.0
        # ingestion is the first fifth of the bar, answering the rest
        report(0.2 * share if event.stage == "ingest" else 0.2 + 0.8 * share,
               f"{event.done}/{event.total} {what}" + (f" ({event.item})" if event.item else ""))

    fields = {**spec, "modes": tuple(spec["modes"])}
    return run_eval(service, EvalSpec(**fields), progress=on_progress)


HANDLERS: dict[str, Handler] = {"ingest": run_ingest, "rebuild": run_rebuild, "train": run_train, "eval": run_eval_job}


def queue_ingest(runner: JobRunner, service: LlocoService, name: str, paths: list[Path], *,
                 cleanup: Path | None = None, owner: str | None = None) -> Job:
    """Queue the ingestion of ``paths`` into collection ``name``; its files are listed as 'queued'
    documents at once. ``cleanup``: a folder (an upload's) removed when the job ends."""
    from indexing.pipeline import queue_documents

    row = service.get_collection(name)
    documents = queue_documents(service.sessions, row.id, list(paths))
    spec = {"collection": name, "paths": [str(p) for p in paths], "documents": documents,
            "cleanup": str(cleanup) if cleanup else None}
    return runner.enqueue("ingest", f"ingest {len(paths)} file(s) into {name}", spec, collection=name, owner=owner)


def queue_rebuild(runner: JobRunner, service: LlocoService, name: str, *, owner: str | None = None) -> Job:
    service.get_collection(name)  # a missing collection: refused now, not when a worker gets to it
    return runner.enqueue("rebuild", f"rebuild {name}", {"collection": name}, collection=name, owner=owner)


def queue_train(runner: JobRunner, service: LlocoService, name: str, *, qa_file: Path | None, synthetic: int, steps: int,
                cleanup: Path | None = None, owner: str | None = None) -> Job:
    """Queue the training of collection ``name``'s adapter (attached when done). ``cleanup``: a folder
    (the uploaded QA file's) removed when the job ends."""
    service.get_collection(name)
    spec = {"collection": name, "qa_file": str(qa_file) if qa_file else None, "synthetic": synthetic, "steps": steps,
            "cleanup": str(cleanup) if cleanup else None}
    return runner.enqueue("train", f"train an adapter for {name}", spec, collection=name, owner=owner)


def queue_eval(runner: JobRunner, spec: Any, *, owner: str | None = None) -> Job:
    """Queue an evaluation run (``spec``: a validated :class:`app.eval.runner.EvalSpec`)."""
    from dataclasses import asdict

    fields = {**asdict(spec), "modes": list(spec.modes)}
    label = f"evaluate {spec.dataset} ({', '.join(spec.modes)}, {spec.limit} questions)"
    return runner.enqueue("eval", label, fields, collection=spec.collection, owner=owner)
