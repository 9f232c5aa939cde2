"""What the REST and OpenAI-compatible routes share: who is asking, the one error shape, the request
bodies' base, ids, and the JSON of answers, sources, costs and jobs."""

from __future__ import annotations

from dataclasses import asdict

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from annotated_types import Interval
from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from app.accounts.access import ActingService
from app.accounts.store import LOCAL_ADMIN, Principal
from app.config import TopK
from app.core.verify import verification_json
from app.jobs.runner import to_json
from indexing.catalog import MAX_ID
from model.errors import AuthenticationError, ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError

if TYPE_CHECKING:
    from app.core.answerers import Answer
    from app.core.citations import Citation

def _whole(value: Any) -> Any:
    """JSON's integers: 3 and 3.0, never ``true`` (a boolean) nor ``"3"`` (a string)."""
    if isinstance(value, bool) or isinstance(value, str):
        raise ValueError("must be an integer")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Whole = BeforeValidator(_whole)
Id = Annotated[int, Interval(ge=1, le=MAX_ID), Whole]
ApiTopK = Annotated[TopK, Whole]
STATUS = {AuthenticationError: 401, PermissionDeniedError: 403, NotFoundError: 404, ConflictError: 409,
          InvalidInputError: 400}  # the first kind an error is, in this order


class UploadTooLarge(Exception):
    pass


class Body(BaseModel):
    """A request body: strict types (``true`` is not the integer 1, ``"3"`` not 3; integers are :data:`Whole`)."""

    model_config = ConfigDict(strict=True)


# ----------------------------------------------------------------------------- one error shape
class ErrorDetail(BaseModel):
    message: str = Field(description="What is wrong, for a person.")
    type: str = Field(description="The kind of error, e.g. NotFoundError, RequestValidationError.")
    code: int = Field(description="The HTTP status.")


class ErrorBody(BaseModel):
    """Every error the API answers, whatever its status."""

    error: ErrorDetail


_ERRORS = {400: "Bad input", 401: "No API key, or a bad one", 403: "An admin action", 404: "Unknown, or not granted",
           405: "Method not allowed", 409: "Busy", 413: "Too large", 422: "Malformed request", 503: "Catalog busy"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {status: {"model": ErrorBody, "description": text}
                                                    for status, text in _ERRORS.items()}


def error_body(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status,
                        headers=headers)


# ---------------------------------------------------------------------------- who is asking
def principal(request: Request) -> Principal:
    """The user of the request's API key (``Authorization: Bearer KEY``)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("send an API key: 'Authorization: Bearer <key>' (`lloco users key USER` makes one)")
    local = request.app.state.local_token
    if local is not None and secrets.compare_digest(key.strip(), local):  # the CLI on this home (app.api.local)
        return LOCAL_ADMIN
    return request.app.state.accounts.principal_for_key(key.strip())


def acting(request: Request, who: Annotated[Principal, Depends(principal)]) -> ActingService:
    """The service as the request's user: every call checked by :mod:`app.accounts.access`."""
    return ActingService(request.app.state.service, who, request.app.state.accounts)


Acting = Annotated[ActingService, Depends(acting)]


# ---------------------------------------------------------------------------- serialising
def source(c: Citation) -> dict[str, Any]:
    return {"document": c.document, "document_id": c.document_id, "page": c.page, "page_end": c.page_end,
            "snippet": c.snippet, "score": round(float(c.score), 4), "ocr": c.ocr, "chunk_id": c.chunk_id}


def costs(a: Answer) -> dict[str, Any]:
    return {"mode": a.mode, "prompt_tokens": a.prompt_tokens, "context_tokens": a.context_tokens,
            "generated_tokens": a.generated_tokens, "retrieval_s": a.retrieval_s, "ttft_s": a.ttft_s,
            "total_s": a.total_s, "verify_s": a.verify_s,
            "second_look": asdict(a.second_look) if a.second_look is not None else None}


def answer_body(a: Answer) -> dict[str, Any]:
    return {"answer": a.text, "standalone": a.standalone, "sources": [source(c) for c in a.citations], "costs": costs(a),
            "verification": checked(a)}


def checked(a: Answer) -> dict[str, Any] | None:
    """The answer's claims checked against its sources (:mod:`app.core.verify`), as JSON."""
    return None if a.verification is None else verification_json(a.verification)


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def job_body(job: Any, *, paths: bool = True) -> dict[str, Any]:
    """A job (in memory, or a stored :class:`app.jobs.store.JobInfo`) as JSON; the result once done.
    ``paths``: False for an analyst, who sees the files' names, not where they are on the server."""
    status: Literal["queued", "running", "done", "failed", "cancelled"] = job.status
    eta = getattr(job, "eta_s", None)
    result = to_json(job.result) if status == "done" else None
    return {"id": job.id, "kind": job.kind, "label": job.label, "collection": job.collection, "status": status,
            "fraction": job.fraction, "message": job.message, "error": job.error, "seconds": round(job.seconds, 3),
            "eta_s": None if eta is None else round(eta, 1),
            "cancel_requested": bool(getattr(job, "cancel_requested", False)),
            "result": result if paths else names_only(result)}


PATH_FIELDS = frozenset({"path", "adapter_path", "source_path", "qa_file", "out"})  # where the server keeps a file


def names_only(value: Any) -> Any:
    """``value`` (JSON) with every server path in it cut to the file's or folder's name: what an analyst
    sees (admins see where the files are)."""
    if isinstance(value, list):
        return [names_only(v) for v in value]
    if isinstance(value, dict):
        return {k: Path(v).name if k in PATH_FIELDS and isinstance(v, str) else names_only(v) for k, v in value.items()}
    return value


def shown(svc: ActingService, value: Any) -> Any:
    """``value`` as JSON, as the acting user may see it (analysts: no server paths)."""
    data = to_json(value)
    return data if svc.principal.is_admin else names_only(data)
