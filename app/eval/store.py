"""Evaluation runs in the SQL catalog: create or resume a run, save rows, load runs for reports.

Rows are committed one by one, so an interrupted run keeps everything it answered; resuming
skips the (question, mode) pairs already answered and retries the failed ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from indexing.catalog import id_or_name, row_by_id, utc_now
from indexing.eval_catalog import EvalRow, EvalRun
from model.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

# What must not change when a run is resumed: answers made otherwise would not be comparable.
RESUME_KEYS = ("dataset", "path", "top_k", "collection", "decoder", "compressor", "adapter")
# ... and these answering settings, where the stored run recorded them (runs before them did not)
RESUME_SETTINGS = ("expand_tokens", "expand_share", "expand_scoring", "lloco_extra_chunks", "max_new_tokens",
                   "skip_documents", "skip_paragraphs", "sample", "answer_engine", "gguf_type")


@dataclass(frozen=True)
class RunInfo:
    """An evaluation run's record."""

    id: int
    name: str
    dataset: str
    path: str
    modes: list[str]
    settings: dict[str, Any]
    decoder: str
    compressor: str
    adapter: str | None
    status: str
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, run: EvalRun) -> RunInfo:
        return cls(run.id, run.name, run.dataset, run.path, [m for m in run.modes.split(",") if m],
                   dict(run.settings or {}), run.decoder, run.compressor, run.adapter, run.status, run.error,
                   run.created_at, run.finished_at)


@dataclass
class RowData:
    """One question asked in one mode (what :class:`EvalRow` stores)."""

    qid: str
    doc_id: str
    mode: str
    question: str
    references: list[str]
    status: str = "ok"
    prediction: str | None = None
    score: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    prompt_tokens: int | None = None
    generated_tokens: int | None = None
    chunk_ids: list[int] = field(default_factory=list)
    retrieval_s: float | None = None
    ttft_s: float | None = None
    total_s: float | None = None
    context_tokens: int | None = None  # the chunks' part of prompt_tokens (None on rows before migration 0004)

    @classmethod
    def of(cls, row: EvalRow) -> RowData:
        return cls(row.qid, row.doc_id, row.mode, row.question, list(row.references or []), row.status,
                   row.prediction, dict(row.score or {}), dict(row.details or {}), row.error, row.prompt_tokens,
                   row.generated_tokens, list(row.chunk_ids or []), row.retrieval_s, row.ttft_s, row.total_s,
                   row.context_tokens)


@dataclass
class RunData:
    """A run with all its rows, in the order they were answered."""

    info: RunInfo
    rows: list[RowData]


def find_run(sessions: sessionmaker, ref: int | str) -> EvalRun | None:
    """The run with this id (an int or a string of digits) or this name."""
    with sessions() as session:
        ref = id_or_name(ref)
        if isinstance(ref, int):
            return row_by_id(session, EvalRun, ref)
        return session.scalars(select(EvalRun).where(EvalRun.name == ref)).first()


def get_run(sessions: sessionmaker, ref: int | str) -> EvalRun:
    run = find_run(sessions, ref)
    if run is None:
        raise NotFoundError(f"no evaluation run {ref!r} (see `lloco eval list`)")
    return run


def run_values(run: EvalRun) -> dict[str, Any]:
    """The values of :data:`RESUME_KEYS` a stored run was made with."""
    s = run.settings or {}
    return {"dataset": run.dataset, "path": run.path, "top_k": s.get("top_k"), "collection": s.get("collection"),
            "decoder": run.decoder, "compressor": run.compressor, "adapter": run.adapter}


def create_run(sessions: sessionmaker, *, name: str, values: dict[str, Any], modes: list[str],
               settings: dict[str, Any]) -> int:
    """A new run in status 'running'; ``values`` holds the :data:`RESUME_KEYS`."""
    run = EvalRun(name=name, dataset=values["dataset"], path=values["path"], modes=",".join(modes),
                  settings=settings, decoder=values["decoder"], compressor=values["compressor"],
                  adapter=values["adapter"], status="running")
    try:
        with sessions.begin() as session:
            session.add(run)
    except IntegrityError:
        raise InvalidInputError(f"an evaluation run named {name!r} already exists") from None
    return run.id


def reopen_run(sessions: sessionmaker, run: EvalRun, *, values: dict[str, Any], modes: list[str],
               settings: dict[str, Any]) -> int:
    """Resume ``run``: refuse if it was made otherwise, else mark it running with the new settings.

    Its modes become the union of the old and the new ones (a run may gain a mode).
    """
    stored, before = run_values(run), run.settings or {}
    diff = [f"{k} {stored[k]!r} (now {values[k]!r})" for k in RESUME_KEYS if stored[k] != values[k]]
    diff += [f"{k} {before[k]!r} (now {settings.get(k)!r})" for k in RESUME_SETTINGS
             if k in before and before[k] != settings.get(k)]
    if diff:
        raise InvalidInputError(f"evaluation run {run.name!r} was made with " + ", ".join(diff)
                                + ": resume it with the same settings, or start a new run (another --run-name)")
    with sessions.begin() as session:
        row = row_by_id(session, EvalRun, run.id)
        row.modes = ",".join(dict.fromkeys([*row.modes.split(","), *modes]))
        row.settings = {**(row.settings or {}), **settings}
        row.status, row.error, row.finished_at = "running", None, None
    return run.id


def done_keys(sessions: sessionmaker, run_id: int) -> set[tuple[str, str]]:
    """(qid, mode) pairs of the run already answered successfully."""
    with sessions() as session:
        rows = session.execute(select(EvalRow.qid, EvalRow.mode).where(EvalRow.run_id == run_id,
                                                                       EvalRow.status == "ok")).all()
        return {(qid, mode) for qid, mode in rows}


def save_row(sessions: sessionmaker, run_id: int, data: RowData) -> None:
    """Insert a row, replacing an earlier (failed) attempt at the same question and mode."""
    with sessions.begin() as session:
        session.execute(delete(EvalRow).where(EvalRow.run_id == run_id, EvalRow.qid == data.qid,
                                              EvalRow.mode == data.mode))
        session.add(EvalRow(run_id=run_id, qid=data.qid, doc_id=data.doc_id, mode=data.mode,
                            question=data.question, prediction=data.prediction, references=data.references,
                            score=data.score, details=data.details, status=data.status, error=data.error,
                            prompt_tokens=data.prompt_tokens, context_tokens=data.context_tokens,
                            generated_tokens=data.generated_tokens,
                            chunk_ids=data.chunk_ids, retrieval_s=data.retrieval_s, ttft_s=data.ttft_s,
                            total_s=data.total_s))


def finish_run(sessions: sessionmaker, run_id: int, status: str, error: str | None = None) -> None:
    with sessions.begin() as session:
        run = row_by_id(session, EvalRun, run_id)
        run.status, run.error, run.finished_at = status, error, utc_now()


def load_run(sessions: sessionmaker, ref: int | str) -> RunData:
    """A run (by id or name) with its rows."""
    run = get_run(sessions, ref)
    with sessions() as session:
        rows = session.scalars(select(EvalRow).where(EvalRow.run_id == run.id).order_by(EvalRow.id)).all()
        return RunData(RunInfo.of(run), [RowData.of(r) for r in rows])


def list_runs(sessions: sessionmaker) -> list[RunData]:
    """Every run with its rows, newest first."""
    with sessions() as session:
        ids = list(session.scalars(select(EvalRun.id).order_by(EvalRun.id.desc())))
    return [load_run(sessions, i) for i in ids]
