"""OpenAI-compatible endpoints (issue 11): any OpenAI client or chat UI can talk to a collection.

- ``GET /v1/models``: one model per collection the API key may read (its id is the collection's name);
- ``POST /v1/chat/completions``: ``model`` = the collection; the question is the last user message;
  streaming (``stream: true``, server-sent ``chat.completion.chunk`` events, then ``[DONE]``) and
  not. lloco's own options ride as extra fields: ``mode`` (default lloco) and ``top_k``. The
  answer's sources (document, page, snippet, score) come once: in the final chunk of a stream
  (``sources``, beside ``usage``) and in the non-streaming body, with the answer's claims checked
  against them (``verification``: verdict, claims with their evidence, :mod:`app.core.verify`).

Authentication and the access policy are the REST API's (:mod:`app.api.common`): ``Authorization: Bearer KEY``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, Field

from app.api.common import ERROR_RESPONSES, Acting, ApiTopK, Body, checked, costs, source
from app.config import Mode
from app.core.second_look import SECOND_LOOK_NOTE, Restart
from model.errors import InvalidInputError, LlocoError



class Message(Body):
    model_config = ConfigDict(extra="allow", strict=True)
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatBody(Body):
    model_config = ConfigDict(extra="allow", strict=True)  # temperature, max_tokens, ...: accepted, not used
    model: str = Field(description="The collection to ask.")
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    mode: Mode = Field("lloco", description="lloco's answering mode (an extra field).")
    top_k: ApiTopK | None = Field(None, description="Chunks retrieved (an extra field).")


def _text(message: Message) -> str:
    content = message.content
    return content if isinstance(content, str) else " ".join(
        str(p.get("text", "")) for p in content or [] if p.get("type") == "text")


def question_of(messages: list[Message]) -> tuple[str, list[str]]:
    """The last user message's text (a string, or the text parts of a content list) and the earlier
    user messages' texts, oldest first (the conversation a follow-up is read against)."""
    said = [t for t in (_text(m) for m in messages if m.role == "user") if t.strip()]
    if not said:
        raise InvalidInputError("no user message with text: the last user message is the question")
    return said[-1], said[:-1]  # its length is the service's to check, as for every question


def openai_router() -> APIRouter:
    """The /v1 routes, as the API key's user (:data:`app.api.common.Acting`)."""

    router = APIRouter(prefix="/v1", tags=["openai"], responses=ERROR_RESPONSES)

    @router.get("/models", summary="One model per collection you may read")
    def models(svc: Acting) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": c.name, "object": "model", "created": int(c.created_at.timestamp()),
                                            "owned_by": "lloco"} for c in svc.list_collections()]}

    @router.post("/chat/completions", summary="Ask a collection (model = collection name)")
    def chat(body: ChatBody, svc: Acting) -> Any:
        question, history = question_of(body.messages)
        stream = svc.ask(body.model, question, mode=body.mode, top_k=body.top_k, history=history)
        ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        head = {"id": ident, "created": created, "model": body.model}
        if not body.stream:
            a = stream.read()
            return {**head, "object": "chat.completion",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": a.text}, "finish_reason": "stop"}],
                    "usage": _usage(a), "sources": [source(c) for c in a.citations],
                    "lloco": {**costs(a), "standalone": a.standalone}, "verification": checked(a)}
        return StreamingResponse(_chunks(stream, head), media_type="text/event-stream")

    def _chunks(stream, head: dict[str, Any]) -> Iterator[str]:
        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            data = {**head, "object": "chat.completion.chunk",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
            return f"data: {json.dumps(data)}\n\n"

        yield chunk({"role": "assistant", "content": ""})
        try:
            for piece in stream:
                # a kept second look cannot take back streamed deltas: it is announced, then follows
                yield chunk({"content": SECOND_LOOK_NOTE if isinstance(piece, Restart) else piece})
        except LlocoError as exc:
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': type(exc).__name__}})}\n\n"
            return
        a = stream.answer
        yield chunk({}, "stop", usage=_usage(a), sources=[source(c) for c in a.citations], lloco=costs(a),
                    verification=checked(a))
        yield "data: [DONE]\n\n"

    return router


def _usage(a) -> dict[str, int]:
    return {"prompt_tokens": a.prompt_tokens, "completion_tokens": a.generated_tokens,
            "total_tokens": a.prompt_tokens + a.generated_tokens}
