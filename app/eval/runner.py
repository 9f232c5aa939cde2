"""Run an evaluation set through the normal service, in every mode, into SQL.

``run_eval(service, spec)`` reads the dataset, ingests each document into the collection
``{prefix}{dataset}`` (text documents are written to ``<home>/eval-docs/<dataset>/``; a document
is compressed once and skipped by content hash afterwards), then asks every question in every mode
with the dataset's instruction, retrieval restricted to the question's own document, and stores
one scored row per (question, mode). A question that fails is stored as failed with its reason
and the run goes on. The web UI calls the same functions as the CLI.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from app.config import EVAL_MODES, MODES, as_path, check_top_k
from app.eval import store
from app.eval.datasets import DATASET_NAMES, EvalDocument, EvalQuestion, EvalSet, read_dataset
from app.eval.store import RowData
from app.eval.tasks import INSTRUCTIONS, LL_INSTRUCTION, METRICS, option_scores, prompt_question, score_prediction
from model.errors import InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from app.core.service import LlocoService

log = logging.getLogger(__name__)
DEFAULT_MODES = EVAL_MODES
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,199}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class EvalSpec:
    """What to evaluate: a dataset file, the modes to compare and how to ask."""

    dataset: str
    path: str
    modes: tuple[str, ...] = DEFAULT_MODES
    limit: int | None = None  # the first N questions; None: all
    skip_documents: int = 0  # leave out the file's first N documents (e.g. those a reader adapter trained on)
    skip_paragraphs: int = 0  # SQuAD: leave out each article's first N paragraphs (the shipped reader's 12)
    sample: int | None = None  # a random N of the questions (seed 0) instead of the first (limit)
    top_k: int = 4
    collection_prefix: str = "eval-"
    adapter: str | None = None  # a LoRA folder for lloco mode (attached to the eval collection)
    run_name: str | None = None
    # ask against this other collection instead (every answer should be declined: issue 23); the set's
    # documents are then neither ingested nor used to restrict retrieval
    off_collection: str | None = None

    @property
    def collection(self) -> str:
        return f"{self.collection_prefix}{self.dataset}"

    def validate(self) -> EvalSpec:
        """The spec with its path made absolute, or InvalidInputError naming what is wrong."""
        if self.dataset not in DATASET_NAMES:
            raise InvalidInputError(f"unknown dataset {self.dataset!r}: choose one of {', '.join(DATASET_NAMES)}")
        modes = parse_modes(self.modes)
        if self.limit is not None and self.limit < 1:
            raise InvalidInputError(f"--limit must be at least 1, got {self.limit}")
        if self.skip_documents < 0:
            raise InvalidInputError(f"--skip-docs must be at least 0, got {self.skip_documents}")
        if self.skip_documents and self.dataset == "needle":
            raise InvalidInputError("--skip-docs does not apply to needle (it builds its own contexts)")
        if self.skip_paragraphs < 0 or self.skip_paragraphs and self.dataset != "squad":
            raise InvalidInputError(f"--skip-paragraphs applies to squad only and must be at least 0, got "
                                    f"{self.skip_paragraphs} for {self.dataset}")
        if self.sample is not None and (self.sample < 1 or self.limit is not None or self.dataset == "needle"):
            raise InvalidInputError(f"--sample must be at least 1, without --limit, not for needle (got {self.sample})")
        check_top_k(self.top_k, what="--top-k")
        if self.run_name is not None and (not _NAME_RE.match(self.run_name) or self.run_name.isdigit()):
            raise InvalidInputError(f"invalid run name {self.run_name!r}: use letters, digits, '_', '-', '.' "
                                    "(at most 200, not only digits)")
        adapter = str(as_path(self.adapter).resolve()) if self.adapter else None
        if adapter and not (Path(adapter) / "adapter_config.json").is_file():
            raise NotFoundError(f"--adapter {self.adapter}: not a LoRA adapter folder (no adapter_config.json)")
        return replace(self, modes=modes, path=str(as_path(self.path).resolve()), adapter=adapter)


def parse_modes(modes: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """'lloco,rag' (or a sequence) -> ('lloco', 'rag'); unknown, repeated or no modes are refused."""
    items = [m.strip() for m in (modes.split(",") if isinstance(modes, str) else modes)]
    items = [m for m in items if m]
    bad = [m for m in items if m not in MODES]
    if bad or not items or len(set(items)) != len(items):
        why = f"unknown mode {bad[0]!r}" if bad else ("no modes given" if not items else "a mode is repeated")
        raise InvalidInputError(f"bad modes list {','.join(items)!r}: {why}; choose from {', '.join(MODES)}")
    return tuple(items)


@dataclass(frozen=True)
class EvalProgress:
    """A progress event: models loading, or ``done`` of ``total`` documents ingested or answers made."""

    stage: Literal["load", "ingest", "ask"]
    done: int
    total: int
    item: str = ""


ProgressCallback = Callable[[EvalProgress], None]


@dataclass
class _Context:
    """What asking one question needs, resolved once per run."""

    service: LlocoService
    spec: EvalSpec
    run_id: int
    documents: dict[str, tuple[int | None, str | None]]  # eval doc id -> (SQL document id, ingest error)
    evalset: EvalSet | None = None  # for the gold evidence of the questions (retrieval recall)


def run_eval(service: LlocoService, spec: EvalSpec, *, resume: int | str | None = None,
             progress: ProgressCallback | None = None) -> int:
    """Run (or resume) an evaluation and return its run id.

    ``resume`` names a run (id or name) to continue; a ``spec.run_name`` that already exists
    is resumed too. Resuming skips (question, mode) pairs already answered.
    """
    spec = spec.validate()
    service.settings.refuse_state(spec.path, "a dataset file")  # read with open(): never the catalog (issue 26)
    if spec.adapter:
        service.settings.refuse_state(spec.adapter, "an adapter folder")
    evalset = read_dataset(spec.dataset, spec.path, limit=spec.limit,  # type: ignore[arg-type]
                           skip_documents=spec.skip_documents, skip_paragraphs=spec.skip_paragraphs, sample=spec.sample)
    if not evalset.questions:
        raise InvalidInputError(f"{spec.path}: no questions to ask")
    if spec.off_collection is not None:
        if spec.off_collection == spec.collection:
            raise InvalidInputError(f"--off-collection {spec.off_collection!r} is the set's own collection")
        service.get_collection(spec.off_collection)  # NotFoundError before anything is stored
    notify = progress or (lambda _e: None)
    notify(EvalProgress("load", 0, 1, "loading models"))  # input is good: now the slow part
    _ensure_collection(service, spec)
    run_id = _open_run(service, spec, evalset, resume)
    if spec.adapter:  # only once the run accepted it
        service.set_adapter(spec.collection, Path(spec.adapter))
    try:
        done = store.done_keys(service.sessions, run_id)
        todo = [(q, mode) for q in evalset.questions for mode in spec.modes if (q.qid, mode) not in done]
        needed = {q.doc_id for q, _ in todo}
        documents = {} if spec.off_collection else _ingest(service, spec, [d for d in evalset.documents
                                                                         if d.doc_id in needed], notify)
        ctx = _Context(service, spec, run_id, documents, evalset)
        for n, (question, mode) in enumerate(todo, 1):
            store.save_row(service.sessions, run_id, ask_one(ctx, question, mode))
            notify(EvalProgress("ask", n, len(todo), f"{question.qid} [{mode}]"))
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        store.finish_run(service.sessions, run_id, "failed", reason)
        raise
    store.finish_run(service.sessions, run_id, "done")
    return run_id


def resume_spec(service: LlocoService, ref: int | str) -> EvalSpec:
    """The spec a stored run was made with (to resume it from its id or name alone)."""
    run = store.get_run(service.sessions, ref)
    s = run.settings or {}
    return EvalSpec(dataset=run.dataset, path=run.path, modes=tuple(run.modes.split(",")), limit=s.get("limit"),
                    off_collection=s.get("off_collection"),
                    skip_documents=s.get("skip_documents", 0), skip_paragraphs=s.get("skip_paragraphs", 0),
                    sample=s.get("sample"),
                    top_k=s.get("top_k", 4), collection_prefix=s.get("collection_prefix", "eval-"),
                    adapter=s.get("adapter_option"), run_name=run.name)


def _ensure_collection(service: LlocoService, spec: EvalSpec) -> None:
    try:
        service.get_collection(spec.collection)
    except NotFoundError:
        service.create_collection(spec.collection)


def _effective_adapter(service: LlocoService, spec: EvalSpec) -> str | None:
    """The LoRA lloco mode will read with: --adapter, else the collection's, else the configured or
    shipped reader (as ``LlocoService`` picks it)."""
    from model.artifacts import shipped_reader_adapter

    attached = spec.adapter or service.get_collection(spec.collection).adapter_path
    return attached or service.settings.adapter or shipped_reader_adapter(service.settings.decoder)


def _open_run(service: LlocoService, spec: EvalSpec, evalset: EvalSet, resume: int | str | None) -> int:
    s = service.settings
    values = {"dataset": spec.dataset, "path": spec.path, "top_k": spec.top_k, "collection": spec.collection,
              "decoder": s.decoder, "compressor": service.compressor.ident,
              "adapter": _effective_adapter(service, spec)}
    settings = {"limit": spec.limit, "skip_documents": spec.skip_documents, "skip_paragraphs": spec.skip_paragraphs,
                "sample": spec.sample, "top_k": spec.top_k,
                "collection": spec.collection, "off_collection": spec.off_collection,
                "collection_prefix": spec.collection_prefix, "adapter_option": spec.adapter,
                "n_questions": len(evalset.questions), "n_documents": len(evalset.documents),
                "instruction": INSTRUCTIONS[spec.dataset], "embedder": s.embedder,
                "max_new_tokens": s.max_new_tokens, "max_context_tokens": s.max_context_tokens,
                "retrieval": s.retrieval,
                "expand_tokens": s.expand_tokens, "expand_share": s.expand_share, "expand_scoring": s.expand_scoring,
                "lloco_extra_chunks": s.lloco_extra_chunks, "answer_engine": s.answer_engine,
                "gguf_type": s.gguf_type if s.answer_engine == "llama-cpp" else None}
    existing = None
    if resume is not None:
        existing = store.get_run(service.sessions, resume)
    elif spec.run_name:
        existing = store.find_run(service.sessions, spec.run_name)
    if existing is not None:
        return store.reopen_run(service.sessions, existing, values=values, modes=list(spec.modes), settings=settings)
    name = base = spec.run_name or f"{spec.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    for n in range(2, 1000):  # two unnamed runs in the same second
        if spec.run_name or store.find_run(service.sessions, name) is None:
            break
        name = f"{base}-{n}"
    return store.create_run(service.sessions, name=name, values=values, modes=list(spec.modes), settings=settings)


def document_file(service: LlocoService, dataset: str, doc: EvalDocument) -> Path:
    """The file a document is ingested from: its PDF, or its text written under the lloco home."""
    if doc.pdf_path:
        return Path(doc.pdf_path)
    path = service.settings.home / "eval-docs" / dataset / f"{_UNSAFE.sub('_', doc.doc_id)[:150]}.txt"
    data = (doc.text or "").encode("utf-8")
    if not path.is_file() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return path


def _ingest(service: LlocoService, spec: EvalSpec, docs: list[EvalDocument],
            notify: ProgressCallback) -> dict[str, tuple[int | None, str | None]]:
    """Ingest each document (a no-op for one already there); map it to its SQL id or its error."""
    out: dict[str, tuple[int | None, str | None]] = {}
    for n, doc in enumerate(docs, 1):

        def stage(event, doc_id: str = doc.doc_id, n: int = n) -> None:  # the document's own stages
            units = f" {event.done}/{event.total}" if event.total else ""
            notify(EvalProgress("ingest", n - 1, len(docs), f"{doc_id}: {event.stage}{units}"))

        result = service.ingest(spec.collection, [document_file(service, spec.dataset, doc)], progress=stage)[0]
        if result.status == "failed" or result.document_id is None:
            out[doc.doc_id] = (None, result.error or "not ingested")
            log.warning("document %s failed to ingest: %s", doc.doc_id, result.error)
        else:
            out[doc.doc_id] = (result.document_id, None)
        notify(EvalProgress("ingest", n, len(docs), doc.doc_id))
    return out


def ask_one(ctx: _Context, question: EvalQuestion, mode: str) -> RowData:
    """Ask one question in one mode and score it; any failure becomes a failed row."""
    dataset = ctx.spec.dataset
    row = RowData(question.qid, question.doc_id, mode, prompt_question(dataset, question), question.references,
                  details=_cell(question))
    off = ctx.spec.off_collection
    doc_id, doc_error = (None, None) if off else ctx.documents.get(question.doc_id, (None, "document not ingested"))
    if doc_id is None and not off:
        row.status, row.error = "failed", f"document {question.doc_id} failed to ingest: {doc_error}"
        return row
    try:
        answer = ctx.service.ask(off or ctx.spec.collection, row.question, mode=mode, top_k=ctx.spec.top_k,  # type: ignore[arg-type]
                                 document_ids=None if off else [doc_id], instruction=INSTRUCTIONS[dataset]).read()
        row.prediction, row.score = answer.text, score_prediction(dataset, question, answer.text)
        row.prompt_tokens, row.generated_tokens = answer.prompt_tokens, answer.generated_tokens
        row.context_tokens = answer.context_tokens
        row.chunk_ids, row.retrieval_s = answer.chunk_ids, answer.retrieval_s
        row.ttft_s, row.total_s = answer.ttft_s, answer.total_s
        row.details["adapter"] = answer.adapter
        if answer.verification is not None:  # for selective answering: verdict, signals (issue 23)
            v = answer.verification
            row.details["verification"] = {"verdict": v.verdict, "signals": v.signals, "confidence": v.confidence,
                                           "level": v.level, "verify_s": answer.verify_s}
        if answer.second_look is not None:
            row.details["second_look"] = asdict(answer.second_look)
        if off:
            row.details["off_collection"] = off
        else:
            row.score.update(_evidence_scores(ctx, question, answer.chunk_ids))
        if question.choices and not off:
            _add_option_likelihood(ctx, question, mode, doc_id, row)
    except Exception as exc:  # one bad question must not stop the run
        log.warning("question %s (%s) failed: %s", question.qid, mode, exc)
        row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"
    return row


def _evidence_scores(ctx: _Context, question: EvalQuestion, chunk_ids: list[int]) -> dict[str, float]:
    """evidence_recall (share of the gold evidence the retrieved chunks hold) and evidence_all (all of
    it) where the dataset gives evidence (HotpotQA supporting paragraphs, FinanceBench pages)."""
    from app.eval.evidence import RetrievedChunk, evidence
    from indexing.retrieval import chunks_by_id

    if ctx.evalset is None or not chunk_ids:
        return {}
    chunks = [RetrievedChunk(c.text, c.page_start, c.page_end) for c in chunks_by_id(ctx.service.sessions, chunk_ids)]
    found = evidence(ctx.spec.dataset, question, ctx.evalset.document(question.doc_id), chunks)
    if found is None:
        return {}
    scores = {"evidence_recall": found.recall, "evidence_all": float(found.all_found)}
    return {k: v for k, v in scores.items() if k in METRICS.get(ctx.spec.dataset, [])}  # FinanceBench: one page


def _add_option_likelihood(ctx: _Context, question: EvalQuestion, mode: str, doc_id: int, row: RowData) -> None:
    """Score each option's text as the continuation of the same mode's prompt; argmax is the pick."""
    logprobs = ctx.service.score_continuations(ctx.spec.collection, question.question, list(question.choices or []),
                                               mode=mode, top_k=ctx.spec.top_k, document_ids=[doc_id],  # type: ignore[arg-type]
                                               instruction=LL_INSTRUCTION)
    scores, details = option_scores(question, logprobs)
    row.score.update(scores)
    row.details.update(details, answer_letter=question.answer_letter)


def _cell(question: EvalQuestion) -> dict[str, object]:
    """Question metadata reports need (the needle's context length and depth)."""
    meta = question.metadata
    return {k: meta[k] for k in ("context_chars", "depth") if k in meta}


def load_run(service: LlocoService, ref: int | str) -> store.RunData:
    """A run (by id or name) with all its rows."""
    return store.load_run(service.sessions, ref)


def list_runs(service: LlocoService) -> list[store.RunData]:
    """Every evaluation run with its rows, newest first."""
    return store.list_runs(service.sessions)
