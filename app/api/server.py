"""Running the API server (what `lloco api` and `make run API=1` do): uvicorn in the foreground, or in
a thread of this process (tests, the load suite, the web app with the API in one process), announced
in the home's run file so that `lloco ask` asks it (:mod:`app.api.local`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from app.accounts.store import Accounts
from app.api.app import create_app
from app.api.local import announced
from model.errors import InvalidInputError

if TYPE_CHECKING:
    from app.core.service import LlocoService


def serve(service: LlocoService, *, host: str | None = None, port: int | None = None, console=None) -> None:
    """Run the API with uvicorn until interrupted (what ``lloco api`` and ``make api`` do). On a catalog
    without users the first admin is made, its one-time password printed once."""
    import uvicorn

    host, port = host or service.settings.api_host, port or service.settings.api_port
    say = console.print if console else print
    first = Accounts(service.sessions).bootstrap_admin()
    if first:
        say(f"first admin: {first[0]!r}, one-time password {first[1]} (shown once: change it with "
            f"`lloco users passwd {first[0]}`; make API keys with `lloco users key {first[0]}`)")
    say(f"lloco API on http://{host}:{port} (OpenAPI docs at /docs; Ctrl-C stops it)")
    with _sigterm_exits(), announced(service.settings, f"http://{_local(host)}:{port}") as token:  # `lloco ask` asks it
        uvicorn.run(create_app(service, local_token=token), host=host, port=port, log_level="warning")


@contextlib.contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM ends the process through ``finally`` blocks (the run file is removed): uvicorn shuts
    down gracefully on it, then raises the signal again for the handler it found, which by default
    kills the process on the spot."""
    import signal
    import sys

    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)



@contextlib.contextmanager
def serve_in_thread(service: LlocoService, *, host: str = "127.0.0.1", port: int = 0, announce: bool = False,
                    **options: Any) -> Iterator[str]:
    """Serve ``create_app(service, **options)`` on ``host``:``port`` (default: a free loopback port) in a
    thread of this process and yield its base URL; stop it after (tests, the load suite, the web app
    with the API in one process). ``announce``: as `lloco api` does, write the home's run file so that
    `lloco ask` asks this server (needs a fixed ``port``)."""
    with contextlib.ExitStack() as stack:
        if announce:
            if not port:
                raise InvalidInputError("an announced API server needs a fixed port")
            options["local_token"] = stack.enter_context(announced(service.settings, f"http://{_local(host)}:{port}"))
        yield stack.enter_context(_running(service, host, port, options))


def _local(host: str) -> str:
    """Where this machine reaches a server listening on ``host``."""
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - every interface includes loopback


@contextlib.contextmanager
def _running(service: LlocoService, host: str, port: int, options: dict[str, Any]) -> Iterator[str]:
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(service, **options), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{_local(host)}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
