"""A live lloco API server on loopback for tests (uvicorn in a thread, on a free port)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def live_api(service, **options) -> Iterator[str]:
    """Serve ``create_app(service, **options)`` on 127.0.0.1 and yield its base URL; stop it after."""
    import uvicorn

    from app.api import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(service, **options), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
