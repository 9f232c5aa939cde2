"""The API application: its lifespan (the embedded job worker), its error handlers (one error shape
for every failure, FastAPI's and Starlette's own included) and its routers.

    lloco api [--host 127.0.0.1] [--port 8000]      (or ``make api``; OpenAPI docs at /docs)

Resources are under ``/api`` (:mod:`app.api.rest`), the OpenAI-compatible endpoints under ``/v1``
(:mod:`app.api.openai`). Errors are JSON ``{"error": {"message", "type", "code"}}`` with the status
of their kind: 400 bad input, 401 no or bad key, 403 an admin action, 404 unknown (or not granted:
names don't leak), 405 a method the route lacks, 409 busy, 413 too large, 422 malformed body, 503
catalog busy.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.accounts.store import Accounts
from app.api.common import STATUS, UploadTooLarge, error_body
from app.api.openai import openai_router
from app.api.rest import rest_router
from app.jobs.runner import JobRunner
from app.jobs.worker import start_worker
from indexing.catalog import busy_message
from model.errors import LlocoError

if TYPE_CHECKING:
    from app.core.service import LlocoService


def create_app(service: LlocoService, *, jobs: JobRunner | None = None, max_upload_mb: float | None = None,
               local_token: str | None = None) -> FastAPI:
    """The API over ``service`` (its models load once and serve every request). Queued jobs run in a
    worker thread of the server while it runs, unless the ``embedded_worker`` setting is off.
    ``local_token``: accepted as the local admin (the CLI of this home, :mod:`app.api.local`)."""
    runner = jobs or JobRunner(sessions=service.sessions)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if service.settings.embedded_worker:
            start_worker(runner, service)
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
    app.state.upload_limit = int((max_upload_mb or service.settings.max_upload_mb) * 1024 * 1024)
    _handle_errors(app)
    app.include_router(rest_router())
    app.include_router(openai_router())
    return app


def _handle_errors(app: FastAPI) -> None:
    @app.exception_handler(LlocoError)
    async def lloco_error(_request: Request, exc: LlocoError) -> JSONResponse:
        status = next((s for kind, s in STATUS.items() if isinstance(exc, kind)), 400)
        return error_body(status, str(exc), type(exc).__name__, {"WWW-Authenticate": "Bearer"} if status == 401 else None)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's own (a 409 here, a body it cannot parse) and routing's 404/405
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_body(exc.status_code, str(exc.detail), "HTTPException", exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_body(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error_body(422, f"malformed request: {problems}", "RequestValidationError")

    @app.exception_handler(OperationalError)
    async def catalog_busy(_request: Request, exc: OperationalError) -> JSONResponse:
        if (message := busy_message(exc)) is None:
            raise exc
        return error_body(503, message, "CatalogBusy")

    @app.exception_handler(UploadTooLarge)
    async def too_large(request: Request, _exc: UploadTooLarge) -> JSONResponse:
        mb = request.app.state.upload_limit // (1024 * 1024)
        return error_body(413, f"upload larger than {mb} MB (the max_upload_mb setting)", "UploadTooLarge")
