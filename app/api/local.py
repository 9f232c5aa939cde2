"""A question from the CLI costs its answer, not a model load (issue 14, item 5).

`lloco api` announces itself in the home (``<home>/api-server.json``: its pid, URL and a fresh token,
readable by the owner only) and accepts that token as the local admin — whoever can read the home
owns the catalog anyway, as for every CLI command. `lloco ask` finds a live server there and asks it
over HTTP (the models are already loaded), else answers in its own process as before. Only the
standard library speaks HTTP here, so the CLI needs no extra package.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.citations import Citation
from app.core.second_look import Restart
from app.core.verify import verification_from_json
from model.errors import InvalidInputError, LlocoError, NotFoundError

if TYPE_CHECKING:
    from app.core.answerers import Answer
    from app.config import Settings

def run_file(settings: Settings) -> Path:
    return settings.run_file


@contextlib.contextmanager
def announced(settings: Settings, url: str) -> Iterator[str]:
    """Write the run file for a server at ``url`` while it runs; yields the local admin's token."""
    token = "local_" + secrets.token_urlsafe(32)
    path = run_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "url": url, "token": token}, fh)
    os.replace(path.with_suffix(".tmp"), path)
    try:
        yield token
    finally:
        _remove_if_token(path, token)


def _remove_if_token(path: Path, token: str) -> None:
    """Remove the run file if it is still the one with ``token`` (not a newer server's)."""
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()


def find_server(settings: Settings, *, timeout: float = 0.5) -> tuple[str, str] | None:
    """(url, token) of a live `lloco api` on this home, or None (no run file, its process gone, or
    it does not answer)."""
    try:
        info = json.loads(run_file(settings).read_text())
        url, token, pid = info["url"], info["token"], int(info["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:  # a server that died without cleaning up (SIGKILL, power loss): its file goes
        _remove_if_token(run_file(settings), token)
        return None
    except PermissionError:
        pass
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=timeout) as reply:  # noqa: S310 - loopback URL we wrote
            if reply.status != 200:
                return None
    except (OSError, urllib.error.URLError):
        return None
    return url, token


def ask_server(url: str, token: str, collection: str, question: str, *, mode: str = "lloco", top_k: int | None = None,
               document_ids: list[int] | None = None, history: list[str] | None = None) -> RemoteAnswer:
    """Ask the server; iterate the result for the answer's pieces as they stream, then read ``.answer``."""
    body = {"question": question, "mode": mode, "top_k": top_k, "document_ids": document_ids, "history": history,
            "stream": True}
    request = urllib.request.Request(f"{url}/api/collections/{urllib.request.quote(collection, safe='')}/ask",
                                     data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        reply = urllib.request.urlopen(request, timeout=600)  # noqa: S310 - loopback URL we wrote
    except urllib.error.HTTPError as exc:
        raise _error(exc) from None
    return RemoteAnswer(reply, mode=mode, question=question)


def _error(exc: urllib.error.HTTPError) -> LlocoError:
    try:
        message = json.loads(exc.read())["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"HTTP {exc.code}"
    return NotFoundError(message) if exc.code == 404 else InvalidInputError(message)


class RemoteAnswer:
    """The server's server-sent events as an answer stream: text pieces, then sources and costs."""

    def __init__(self, reply: Any, *, mode: str, question: str) -> None:
        from app.core.answerers import Answer

        self._reply, self._started = reply, time.perf_counter()
        self.answer: Answer = Answer(mode=mode, question=question)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        event, pieces = None, []
        with self._reply:
            for raw in self._reply:
                line = raw.decode("utf-8").rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                    continue
                if not line.startswith("data: "):
                    continue
                data = json.loads(line[6:])
                if event == "restart":
                    pieces.clear()
                    yield Restart()
                elif event == "token":
                    if self.answer.ttft_s is None:
                        self.answer.ttft_s = time.perf_counter() - self._started
                    pieces.append(data["text"])
                    yield data["text"]
                elif event == "error":
                    raise InvalidInputError(data["message"])
                elif event == "standalone":
                    self.answer.standalone = data["question"]
                elif event == "sources":
                    self.answer.citations = [Citation(s["document"], s["document_id"], s["page"], s["page_end"],
                                                      s["snippet"], s["score"], s.get("chunk_id", 0), 0, 0,
                                                      ocr=s.get("ocr", False)) for s in data]
                elif event == "verification" and data is not None:
                    self.answer.verification = verification_from_json(data)
                elif event == "costs":
                    for key in ("prompt_tokens", "context_tokens", "generated_tokens", "retrieval_s", "verify_s"):
                        setattr(self.answer, key, data.get(key) or 0)
        self.answer.text = "".join(pieces).strip()
        self.answer.total_s = time.perf_counter() - self._started

    def read(self) -> Answer:
        for _ in self:
            pass
        return self.answer
