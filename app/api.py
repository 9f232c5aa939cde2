"""lloco's REST API (issue 11): FastAPI over the service layer, every call as the key's user.

    lloco api [--host 127.0.0.1] [--port 8000]      (or ``make api``; OpenAPI docs at /docs)

Every request carries ``Authorization: Bearer <API key>`` (``lloco users key USER``); the key's
user acts through :class:`app.access.ActingService`, so the API obeys exactly the roles and
grants the web app does. Resources are under ``/api``; the OpenAI-compatible endpoints
(:mod:`app.api_openai`) under ``/v1``. Errors are JSON ``{"error": {"message", "type", "code"}}``
with the status of their kind: 400 bad input, 401 no or bad key, 403 an admin action, 404 unknown
(or not granted: names don't leak), 409 busy, 413 too large, 422 malformed body.

Uploads are refused by size while they stream, before the body is in memory or on disk: a
declared ``Content-Length`` over the limit at once, a chunked body when it passes the limit.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import OperationalError

from app.access import ActingService
from app.accounts import LOCAL_ADMIN, Accounts, Principal
from app.config import MAX_QUESTION_CHARS, Mode
from app.job_handlers import new_upload_folder
from app.jobs import JobRunner, to_json
from model.errors import (AuthenticationError, InvalidInputError, LlocoError, NotFoundError,
                          PermissionDeniedError)

if TYPE_CHECKING:
    from app.answerers import Answer
    from app.citations import Citation
    from app.service import LlocoService

STATUS = {AuthenticationError: 401, PermissionDeniedError: 403, NotFoundError: 404, InvalidInputError: 400}


class UploadTooLarge(Exception):
    pass


# ----------------------------------------------------------------------------------- bodies
class CollectionCreate(BaseModel):
    name: str = Field(description="Letters, digits, '_', '-', '.' (at most 100).")


class AskBody(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    mode: Mode = "lloco"
    top_k: int | None = Field(None, ge=1, le=100, description="Chunks retrieved; default: the top_k setting.")
    document_ids: list[int] | None = Field(None, description="Answer from these documents of the collection only.")
    history: list[str] | None = Field(None, max_length=50, description="The conversation's earlier questions as typed, "
                                      "oldest first: a follow-up ('and in 2022?') is made standalone from them.")
    stream: bool = Field(True, description="Server-sent events (token, then sources and costs), else one JSON body.")


class EvalRunBody(BaseModel):
    dataset: str = Field(description="quality, qasper, narrativeqa, hotpotqa, qmsum, squad, financebench or needle.")
    path: str = Field(description="The dataset file on the server, under a configured root (the server_roots setting).")
    modes: list[Mode] = Field(default_factory=lambda: ["lloco", "lloco-pure", "rag"], min_length=1)
    limit: int | None = Field(None, ge=1, description="Ask only the first N questions.")
    top_k: int = Field(4, ge=1, le=100)
    run_name: str | None = Field(None, max_length=200, description="An existing name resumes that run.")


class CompareBody(BaseModel):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    modes: list[Mode] = Field(default_factory=lambda: ["lloco", "lloco-pure", "rag"], min_length=1)
    top_k: int | None = Field(None, ge=1, le=100)


# ---------------------------------------------------------------------------- serialising
def source(c: Citation) -> dict[str, Any]:
    return {"document": c.document, "document_id": c.document_id, "page": c.page, "page_end": c.page_end,
            "snippet": c.snippet, "score": round(float(c.score), 4), "ocr": c.ocr, "chunk_id": c.chunk_id}


def costs(a: Answer) -> dict[str, Any]:
    return {"mode": a.mode, "prompt_tokens": a.prompt_tokens, "context_tokens": a.context_tokens,
            "generated_tokens": a.generated_tokens, "retrieval_s": a.retrieval_s, "ttft_s": a.ttft_s,
            "total_s": a.total_s}


def answer_body(a: Answer) -> dict[str, Any]:
    return {"answer": a.text, "standalone": a.standalone, "sources": [source(c) for c in a.citations], "costs": costs(a)}


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def error_body(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


# ---------------------------------------------------------------------------- who is asking
def principal(request: Request) -> Principal:
    """The user of the request's API key (``Authorization: Bearer KEY``)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("send an API key: 'Authorization: Bearer <key>' (`lloco users key USER` makes one)")
    local = request.app.state.local_token
    if local is not None and secrets.compare_digest(key.strip(), local):  # the CLI on this home (app.local_server)
        return LOCAL_ADMIN
    return request.app.state.accounts.principal_for_key(key.strip())


def acting(request: Request, who: Annotated[Principal, Depends(principal)]) -> ActingService:
    """The service as the request's user: every call checked by :mod:`app.access`."""
    return ActingService(request.app.state.service, who, request.app.state.accounts)


Acting = Annotated[ActingService, Depends(acting)]


# ----------------------------------------------------------------------------------- the app
def create_app(service: LlocoService, *, jobs: JobRunner | None = None, max_upload_mb: float | None = None,
               local_token: str | None = None) -> FastAPI:
    """The API over ``service`` (its models load once and serve every request). Queued jobs run in a
    worker thread of the server while it runs, unless the ``embedded_worker`` setting is off.
    ``local_token``: accepted as the local admin (the CLI of this home, :mod:`app.local_server`)."""
    runner = jobs or JobRunner(sessions=service.sessions)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if service.settings.embedded_worker:
            runner.start_worker(service)
        try:
            yield
        finally:
            runner.close()

    app = FastAPI(title="lloco", description="Document question answering with LLoCO: collections, documents, "
                  "questions (streamed, with sources and costs), comparisons and evaluation runs.", version="1",
                  lifespan=lifespan)
    app.state.service, app.state.accounts = service, Accounts(service.sessions)
    app.state.jobs = runner
    app.state.local_token = local_token

    @app.get("/api/health", tags=["health"], summary="Whether the server is up (no key needed)")
    def health() -> dict[str, str]:
        return {"status": "ok"}
    limit = int((max_upload_mb or service.settings.max_upload_mb) * 1024 * 1024)

    @app.exception_handler(LlocoError)
    async def lloco_error(_request: Request, exc: LlocoError) -> JSONResponse:
        status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
        response = error_body(status, str(exc), type(exc).__name__)
        if status == 401:
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return error_body(exc.status_code, str(exc.detail), "HTTPException")

    @app.exception_handler(RequestValidationError)
    async def bad_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error_body(422, f"malformed request: {problems}", "RequestValidationError")

    @app.exception_handler(OperationalError)
    async def catalog_busy(_request: Request, exc: OperationalError) -> JSONResponse:
        from indexing.catalog import busy_message

        if (message := busy_message(exc)) is None:
            raise exc
        return error_body(503, message, "CatalogBusy")

    @app.exception_handler(UploadTooLarge)
    async def too_large(_request: Request, _exc: UploadTooLarge) -> JSONResponse:
        return error_body(413, f"upload larger than {limit // (1024 * 1024)} MB (the max_upload_mb setting)", "UploadTooLarge")

    # collections ------------------------------------------------------------------------
    @app.get("/api/collections", tags=["collections"], summary="Collections you may read")
    def list_collections(svc: Acting) -> list[dict[str, Any]]:
        return [to_json(c) for c in svc.list_collections()]

    @app.post("/api/collections", status_code=201, tags=["collections"], summary="Create a collection (admin)")
    def create_collection(body: CollectionCreate, svc: Acting) -> dict[str, Any]:
        return to_json(svc.create_collection(body.name))

    @app.get("/api/collections/{name}", tags=["collections"])
    def get_collection(name: str, svc: Acting) -> dict[str, Any]:
        return to_json(svc.get_collection(name))

    @app.delete("/api/collections/{name}", status_code=204, tags=["collections"], summary="Delete a collection (admin)")
    def delete_collection(name: str, svc: Acting) -> Response:
        svc.check_admin_on(name, f"delete collection {name!r}")  # before "busy": that would tell it exists
        _not_busy(app.state.jobs, name)
        svc.delete_collection(name)
        return Response(status_code=204)

    # documents --------------------------------------------------------------------------
    @app.get("/api/collections/{name}/documents", tags=["documents"])
    def list_documents(name: str, svc: Acting) -> list[dict[str, Any]]:
        return [to_json(d) for d in svc.list_documents(name)]

    @app.post("/api/collections/{name}/documents", status_code=202, tags=["documents"],
              summary="Upload documents (admin): multipart 'files'; returns the ingestion job")
    async def upload(name: str, request: Request, svc: Acting) -> dict[str, Any]:
        svc.check_admin_on(name, f"add documents to {name!r}")  # 404 / 403 before any byte of the body is read
        _not_busy(app.state.jobs, name)
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise UploadTooLarge
        folder = new_upload_folder(app.state.service.settings)
        try:
            paths = await _save_upload(request, folder, limit)
            return job_body(svc.queue_ingest(app.state.jobs, name, paths, cleanup=folder))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    @app.delete("/api/collections/{name}/documents/{document}", tags=["documents"], summary="Delete a document (admin)")
    def delete_document(name: str, document: str, svc: Acting) -> dict[str, Any]:
        svc.check_admin_on(name, f"delete a document of {name!r}")
        _not_busy(app.state.jobs, name)
        return to_json(svc.delete_document(name, int(document) if document.isdigit() else document))

    @app.get("/api/jobs/{job_id}", tags=["documents"], summary="A job's status and per-stage progress")
    def get_job(job_id: int, svc: Acting) -> dict[str, Any]:
        return _readable_job(app.state.jobs, svc, job_id)

    @app.post("/api/jobs/{job_id}/cancel", tags=["documents"], summary="Cancel a running job (admin)")
    def cancel_job(job_id: int, svc: Acting) -> dict[str, Any]:
        job = _readable_job(app.state.jobs, svc, job_id)
        svc.require_admin(f"cancel job #{job_id}")
        if job["status"] in ("queued", "running"):
            app.state.jobs.cancel(job_id)
        return _readable_job(app.state.jobs, svc, job_id)

    # questions --------------------------------------------------------------------------
    @app.post("/api/collections/{name}/ask", tags=["questions"],
              summary="Ask: server-sent events (token ..., sources, costs, done) or one JSON body")
    def ask(name: str, body: AskBody, svc: Acting) -> Any:
        stream = svc.ask(name, body.question, mode=body.mode, top_k=body.top_k, document_ids=body.document_ids,
                         history=body.history)
        if not body.stream:
            return answer_body(stream.read())
        return StreamingResponse(_events(stream), media_type="text/event-stream")

    @app.post("/api/collections/{name}/compare", tags=["questions"],
              summary="The same question in several modes, with each mode's costs and ratios to rag")
    def compare(name: str, body: CompareBody, svc: Acting) -> dict[str, Any]:
        from app.compare import cost_ratios

        answers = {m: svc.ask(name, body.question, mode=m, top_k=body.top_k).read() for m in dict.fromkeys(body.modes)}
        base = answers.get("rag")
        return {"question": body.question,
                "answers": {m: {**answer_body(a), "vs_rag": cost_ratios(a, base) if base and m != "rag" else None}
                            for m, a in answers.items()}}

    # evaluation runs (admins) -------------------------------------------------------------
    @app.get("/api/eval/runs", tags=["evaluation"], summary="Evaluation runs (admin)")
    def eval_runs(svc: Acting) -> list[dict[str, Any]]:
        from app.eval.runner import list_runs

        svc.require_admin("list evaluation runs")
        return [to_json(r.info) for r in list_runs(svc.service)]

    @app.post("/api/eval/runs", status_code=202, tags=["evaluation"],
              summary="Start an evaluation run (admin); returns its job")
    def start_eval(body: EvalRunBody, svc: Acting) -> dict[str, Any]:
        from app.eval.runner import EvalSpec
        from app.job_handlers import queue_eval

        path = svc.check_server_path(body.path, "dataset files")
        spec = EvalSpec(dataset=body.dataset, path=str(path), modes=tuple(body.modes), limit=body.limit,
                        top_k=body.top_k, run_name=body.run_name).validate()
        return job_body(queue_eval(app.state.jobs, spec, owner=svc.principal.name))

    @app.get("/api/eval/runs/{ref}", tags=["evaluation"], summary="A run's summary with paired differences (admin)")
    def eval_run(ref: str, svc: Acting) -> dict[str, Any]:
        from app.eval.report import summarize
        from app.eval.runner import load_run

        svc.require_admin(f"read evaluation run {ref!r}")
        return to_json(summarize(load_run(svc.service, int(ref) if ref.isdigit() else ref)).to_dict())

    from app.api_openai import openai_router

    app.include_router(openai_router())
    return app


def _not_busy(jobs: JobRunner, name: str) -> None:
    if (job := jobs.busy(name)) is not None:
        raise HTTPException(409, f"collection {name!r} is busy: job #{job.id} ({job.label}); try again when it ends")


def _events(stream) -> Iterator[str]:
    try:
        for piece in stream:
            yield sse("token", {"text": piece})
    except LlocoError as exc:
        yield sse("error", {"message": str(exc)})
        return
    a = stream.answer
    if a.standalone:
        yield sse("standalone", {"question": a.standalone})
    yield sse("sources", [source(c) for c in a.citations])
    yield sse("costs", costs(a))
    yield sse("done", {"answer": a.text})


async def _save_upload(request: Request, folder: Path, limit: int) -> list[Path]:
    """The multipart body's files saved under ``folder`` (each in its own numbered folder, so two
    files of one name are both kept), counting bytes as they arrive."""
    from starlette.formparsers import MultiPartParser

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
    form = await MultiPartParser(request.headers, counted(), max_files=1000, max_fields=1000).parse()
    paths = []
    for i, (field, value) in enumerate(form.multi_items()):
        if field != "files" or isinstance(value, str):
            raise InvalidInputError(f"unexpected form field {field!r}: send the documents as 'files'")
        name = Path((value.filename or "").replace("\\", "/")).name  # never a path: no escaping the folder
        if name in ("", ".", ".."):
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
    from app.job_store import get_job

    job = jobs.get(job_id)
    body = job_body(job) if job is not None else job_body(get_job(svc.service.sessions, job_id))
    if body["collection"] and not svc.principal.is_admin and not svc.can_read(body["collection"]):
        raise NotFoundError(f"no job #{job_id}")  # admins see every job, even one whose collection is not made yet
    return body


def job_body(job) -> dict[str, Any]:
    """A job (in memory, or a stored :class:`app.job_store.JobInfo`) as JSON; the result once done."""
    status: Literal["queued", "running", "done", "failed", "cancelled"] = job.status
    eta = getattr(job, "eta_s", None)
    return {"id": job.id, "kind": job.kind, "label": job.label, "collection": job.collection, "status": status,
            "fraction": job.fraction, "message": job.message, "error": job.error, "seconds": round(job.seconds, 3),
            "eta_s": None if eta is None else round(eta, 1),
            "cancel_requested": bool(getattr(job, "cancel_requested", False)),
            "result": to_json(job.result) if status == "done" else None}
