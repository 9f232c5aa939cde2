"""lloco's REST API (issue 11): the /api routes over the service layer, every call as the key's user.

Every request carries ``Authorization: Bearer <API key>`` (``lloco users key USER``); the key's
user acts through :class:`app.accounts.access.ActingService`, so the API obeys exactly the roles and
grants the web app does. Errors have one shape (:class:`app.api.common.ErrorBody`).

Uploads are refused by size while they stream, before the body is in memory or on disk: a
declared ``Content-Length`` over the limit at once, a chunked body when it passes the limit.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import Response, StreamingResponse
from pydantic import Field

from app.accounts.access import ActingService
from app.api.common import (ERROR_RESPONSES, Acting, ApiTopK, Body, Id, UploadTooLarge, answer_body, checked, costs, job_body,
                            shown, source, sse)
from app.core.second_look import Restart
from app.config import COLLECTION_NAME, COMPARED_MODES, MAX_QUESTION_CHARS, QUESTION_PATTERN, Mode
from app.eval.datasets import DatasetName
from app.jobs.handlers import new_upload_folder
from app.jobs.runner import JobRunner, to_json
from indexing.catalog import MAX_ID, id_or_name
from indexing.loaders import clean_filename
from model.errors import InvalidInputError, LlocoError, NotFoundError

JobId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


def _jobs(request: Request) -> JobRunner:
    return request.app.state.jobs


Jobs = Annotated[JobRunner, Depends(_jobs)]


# ----------------------------------------------------------------------------------- bodies
class CollectionCreate(Body):
    name: str = Field(pattern=COLLECTION_NAME, description="Letters, digits, '_', '-', '.' (at most 100).")


class AskBody(Body):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=QUESTION_PATTERN)
    mode: Mode = "lloco"
    top_k: ApiTopK | None = Field(None, description="Chunks retrieved; default: the top_k setting.")
    document_ids: list[Id] | None = Field(None, max_length=10_000,
                                          description="Answer from these documents of the collection only.")
    history: list[str] | None = Field(None, max_length=50, description="The conversation's earlier questions as typed, "
                                      "oldest first: a follow-up ('and in 2022?') is made standalone from them.")
    stream: bool = Field(True, description="Server-sent events (token, then sources, verification and costs), else one JSON body.")


class EvalRunBody(Body):
    dataset: DatasetName = Field(description="Which reader the file is read with.")
    path: str = Field(description="The dataset file on the server, under a configured root (the server_roots setting).")
    modes: list[Mode] = Field(default_factory=lambda: list(COMPARED_MODES), min_length=1)
    limit: Id | None = Field(None, description="Ask only the first N questions.")
    top_k: ApiTopK = 4
    run_name: str | None = Field(None, max_length=200, description="An existing name resumes that run.")


class CompareBody(Body):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, pattern=QUESTION_PATTERN)
    modes: list[Mode] = Field(default_factory=lambda: list(COMPARED_MODES), min_length=1)
    top_k: ApiTopK | None = None


def rest_router() -> APIRouter:
    """The /api routes; the app's state holds the service, accounts and job runner."""
    router = APIRouter(responses=ERROR_RESPONSES)

    @router.get("/api/health", tags=["health"], summary="Whether the server is up (no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    for add in (_collection_routes, _document_routes, _question_routes, _eval_routes):
        add(router)
    return router


def _collection_routes(router: APIRouter) -> None:
    """Collections: list, create, read, delete."""

    @router.get("/api/collections", tags=["collections"], summary="Collections you may read")
    def list_collections(svc: Acting) -> list[dict[str, Any]]:
        return [shown(svc, c) for c in svc.list_collections()]

    @router.post("/api/collections", status_code=201, tags=["collections"], summary="Create a collection (admin)")
    def create_collection(body: CollectionCreate, svc: Acting) -> dict[str, Any]:
        return to_json(svc.create_collection(body.name))

    @router.get("/api/collections/{name}", tags=["collections"])
    def get_collection(name: str, svc: Acting) -> dict[str, Any]:
        return shown(svc, svc.get_collection(name))

    @router.delete("/api/collections/{name}", status_code=204, tags=["collections"], summary="Delete a collection (admin)")
    def delete_collection(name: str, svc: Acting, jobs: Jobs) -> Response:
        svc.check_admin_on(name, f"delete collection {name!r}")  # before "busy": that would tell it exists
        _not_busy(jobs, name)
        svc.delete_collection(name)
        return Response(status_code=204)


def _document_routes(router: APIRouter) -> None:
    """Documents and the jobs that ingest them."""

    @router.get("/api/collections/{name}/documents", tags=["documents"])
    def list_documents(name: str, svc: Acting) -> list[dict[str, Any]]:
        return [shown(svc, d) for d in svc.list_documents(name)]

    @router.post("/api/collections/{name}/documents", status_code=202, tags=["documents"],
                 summary="Upload documents (admin): multipart 'files'; returns the ingestion job")
    async def upload(name: str, request: Request, svc: Acting, jobs: Jobs) -> dict[str, Any]:
        svc.check_admin_on(name, f"add documents to {name!r}")  # 404 / 403 before any byte of the body is read
        _not_busy(jobs, name)
        limit = request.app.state.upload_limit
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise UploadTooLarge
        folder = new_upload_folder(svc.service.settings)
        try:
            paths = await _save_upload(request, folder, limit)
            return job_body(svc.queue_ingest(jobs, name, paths, cleanup=folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    @router.delete("/api/collections/{name}/documents/{document}", tags=["documents"], summary="Delete a document (admin)")
    def delete_document(name: str, document: str, svc: Acting, jobs: Jobs) -> dict[str, Any]:
        svc.check_admin_on(name, f"delete a document of {name!r}")
        _not_busy(jobs, name)
        return to_json(svc.delete_document(name, id_or_name(document)))

    @router.get("/api/jobs/{job_id}", tags=["documents"], summary="A job's status and per-stage progress")
    def get_job(job_id: JobId, svc: Acting, jobs: Jobs) -> dict[str, Any]:
        return _readable_job(jobs, svc, job_id)

    @router.post("/api/jobs/{job_id}/cancel", tags=["documents"], summary="Cancel a running job (admin)")
    def cancel_job(job_id: JobId, svc: Acting, jobs: Jobs) -> dict[str, Any]:
        job = _readable_job(jobs, svc, job_id)
        svc.require_admin(f"cancel job #{job_id}")
        if job["status"] in ("queued", "running"):
            jobs.cancel(job_id)
        return _readable_job(jobs, svc, job_id)


def _question_routes(router: APIRouter) -> None:
    """Questions: ask (streamed or not) and compare modes."""

    @router.post("/api/collections/{name}/ask", tags=["questions"],
                 summary="Ask: server-sent events (token ..., sources, verification, costs, done) or one JSON body")
    def ask(name: str, body: AskBody, svc: Acting) -> Any:
        stream = svc.ask(name, body.question, mode=body.mode, top_k=body.top_k, document_ids=body.document_ids,
                         history=body.history)
        if not body.stream:
            return answer_body(stream.read())
        return StreamingResponse(_events(stream), media_type="text/event-stream")

    @router.post("/api/collections/{name}/compare", tags=["questions"],
                 summary="The same question in several modes, with each mode's costs and ratios to rag")
    def compare(name: str, body: CompareBody, svc: Acting) -> dict[str, Any]:
        from app.core.compare import cost_ratios

        answers = {m: svc.ask(name, body.question, mode=m, top_k=body.top_k).read() for m in dict.fromkeys(body.modes)}
        base = answers.get("rag")
        return {"question": body.question,
                "answers": {m: {**answer_body(a), "vs_rag": cost_ratios(a, base) if base and m != "rag" else None}
                            for m, a in answers.items()}}


def _eval_routes(router: APIRouter) -> None:
    """Evaluation runs (admins)."""

    @router.get("/api/eval/runs", tags=["evaluation"], summary="Evaluation runs (admin)")
    def eval_runs(svc: Acting) -> list[dict[str, Any]]:
        from app.eval.runner import list_runs

        svc.require_admin("list evaluation runs")
        return [to_json(r.info) for r in list_runs(svc.service)]

    @router.post("/api/eval/runs", status_code=202, tags=["evaluation"],
                 summary="Start an evaluation run (admin); returns its job")
    def start_eval(body: EvalRunBody, svc: Acting, jobs: Jobs) -> dict[str, Any]:
        from app.eval.runner import EvalSpec
        from app.jobs.handlers import queue_eval

        path = svc.check_server_path(body.path, "dataset files")
        spec = EvalSpec(dataset=body.dataset, path=str(path), modes=tuple(body.modes), limit=body.limit,
                        top_k=body.top_k, run_name=body.run_name).validate()
        return job_body(queue_eval(jobs, spec, owner=svc.principal.name))

    @router.get("/api/eval/runs/{ref}", tags=["evaluation"], summary="A run's summary with paired differences (admin)")
    def eval_run(ref: str, svc: Acting) -> dict[str, Any]:
        from app.eval.summary import summarize
        from app.eval.runner import load_run

        svc.require_admin(f"read evaluation run {ref!r}")
        return to_json(summarize(load_run(svc.service, id_or_name(ref))).to_dict())


def _not_busy(jobs: JobRunner, name: str) -> None:
    if (job := jobs.busy(name)) is not None:
        raise HTTPException(409, f"collection {name!r} is busy: job #{job.id} ({job.label}); try again when it ends")


def _events(stream) -> Iterator[str]:
    try:
        for piece in stream:
            if isinstance(piece, Restart):  # a kept second look: what follows replaces the text so far
                yield sse("restart", {})
                continue
            yield sse("token", {"text": piece})
    except LlocoError as exc:
        yield sse("error", {"message": str(exc)})
        return
    a = stream.answer
    if a.standalone:
        yield sse("standalone", {"question": a.standalone})
    yield sse("sources", [source(c) for c in a.citations])
    yield sse("verification", checked(a))
    yield sse("costs", costs(a))
    yield sse("done", {"answer": a.text})


async def _save_upload(request: Request, folder: Path, limit: int) -> list[Path]:
    """The multipart body's files saved under ``folder`` (each in its own numbered folder, so two
    files of one name are both kept), counting bytes as they arrive."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    received = 0

    async def counted() -> Any:
        nonlocal received
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                raise UploadTooLarge
            yield chunk

    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise InvalidInputError("upload documents as multipart/form-data with one or more 'files' fields")
    try:
        form = await MultiPartParser(request.headers, counted(), max_files=1000, max_fields=1000).parse()
    except MultiPartException as exc:
        raise InvalidInputError(f"not a readable multipart/form-data body: {exc.message}") from None
    paths = []
    for i, (field, value) in enumerate(form.multi_items()):
        if field != "files" or isinstance(value, str):
            raise InvalidInputError(f"unexpected form field {field!r}: send the documents as 'files'")
        raw = Path((value.filename or "").replace("\\", "/")).name  # never a path: no escaping the folder
        name = clean_filename(raw)  # nor a newline or an escape in it
        if not raw.strip() or name in (".", ".."):
            raise InvalidInputError("an uploaded file has no name")
        path = folder / str(i) / name
        path.parent.mkdir()
        with path.open("wb") as f:
            shutil.copyfileobj(value.file, f)
        paths.append(path)
    if not paths:
        raise InvalidInputError("no files in the upload: send them as multipart 'files' fields")
    return paths


def _readable_job(jobs: JobRunner, svc: ActingService, job_id: int) -> dict[str, Any]:
    """A job as JSON, from this server's runner or else from the catalog (a job of another process,
    or of before a restart); one on a collection the user may not read does not exist for them."""
    from app.jobs.store import get_job

    job = jobs.get(job_id)
    paths = svc.principal.is_admin  # analysts see file names, admins where the files are
    body = job_body(job if job is not None else get_job(svc.service.sessions, job_id), paths=paths)
    if body["collection"] and not svc.principal.is_admin and not svc.can_read(body["collection"]):
        raise NotFoundError(f"no job #{job_id}")  # admins see every job, even one whose collection is not made yet
    return body

