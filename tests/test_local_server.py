"""`lloco ask` answered by a running `lloco api` on the same home (issue 14, item 5): no model load
in the CLI, the same answer and citations as in-process; the server's local token is the local
admin; a stale, dead or silent server is ignored and the CLI answers itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from app.api.server import serve_in_thread
from app.api.local import announced, find_server, run_file
from tests.cli_runner import flat, run_cli


def _fill(service, tmp_path):
    service.create_collection("c")
    (tmp_path / "a.txt").write_text("The keeper lit the lamp at dusk every evening of the year. " * 12)
    service.ingest("c", [tmp_path / "a.txt"])


def test_the_cli_asks_a_running_server_and_gets_the_same_answer(service, tmp_path, monkeypatch, capsys):
    _fill(service, tmp_path)
    capsys.readouterr()  # the ingestion's own output
    code, local_out, _ = run_cli(monkeypatch, capsys, "ask", "c", "When is the lamp lit?", "--mode", "rag", "--local",
                                 service=service)
    assert code == 0 and "answered by the lloco API server" not in local_out
    with announced(service.settings, "http://placeholder") as token:
        assert run_file(service.settings).stat().st_mode & 0o777 == 0o600  # the token: the owner's only
        with serve_in_thread(service, local_token=token) as base:
            info = json.loads(run_file(service.settings).read_text())
            run_file(service.settings).write_text(json.dumps({**info, "url": base}))  # where it really listens
            assert find_server(service.settings) == (base, token)
            code, remote_out, _ = run_cli(monkeypatch, capsys, "ask", "c", "When is the lamp lit?", "--mode", "rag",
                                          service=service)
            assert code == 0 and f"answered by the lloco API server at {base}" in flat(remote_out)
            assert _answer(remote_out) == _answer(local_out)  # the same answer text and citations
            code, _, stderr = run_cli(monkeypatch, capsys, "ask", "nope", "anything?", service=service)
            assert code != 0 and "no collection named 'nope'" in flat(stderr)
    assert not run_file(service.settings).exists()  # gone with the server
    assert find_server(service.settings) is None


def _answer(stdout: str) -> str:
    """The answer and its citation lines, without the timings."""
    return flat(stdout.split("mode rag")[0])


def test_the_local_token_is_the_local_admin_and_only_for_that_server(service, tmp_path):
    from fastapi.testclient import TestClient

    from app.api.app import create_app

    _fill(service, tmp_path)
    with TestClient(create_app(service, local_token="local_secret")) as client:
        assert client.get("/api/health").json() == {"status": "ok"}
        ok = client.get("/api/collections", headers={"Authorization": "Bearer local_secret"})
        assert ok.status_code == 200 and [c["name"] for c in ok.json()] == ["c"]
        assert client.get("/api/collections", headers={"Authorization": "Bearer local_wrong"}).status_code == 401
    with TestClient(create_app(service)) as client:  # a server that announced no token accepts none
        assert client.get("/api/collections", headers={"Authorization": "Bearer local_secret"}).status_code == 401


def test_a_dead_or_corrupt_run_file_is_ignored(settings):
    path = run_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert find_server(settings) is None
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    path.write_text(json.dumps({"pid": child.pid, "url": "http://127.0.0.1:9", "token": "local_x"}))
    assert find_server(settings) is None  # its process is gone
    path.write_text(json.dumps({"pid": os.getpid(), "url": "http://127.0.0.1:9", "token": "local_x"}))
    assert find_server(settings, timeout=0.2) is None  # alive, but nothing answers there


def test_sigterm_removes_the_run_file_and_a_dead_servers_file_is_removed(settings):
    import signal
    import socket
    import time

    with socket.socket() as s:  # a free port for the server to announce
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "LLOCO_HOME": str(settings.home), "LLOCO_DECODER": settings.decoder,
           "LLOCO_EMBEDDER": settings.embedder, "LLOCO_COMPRESSOR": settings.compressor}
    server = subprocess.Popen([sys.executable, "-m", "app", "api", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while find_server(settings) is None:
            assert server.poll() is None and time.monotonic() < deadline, server.stderr.read().decode()[-2000:]
            time.sleep(0.2)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    finally:
        server.kill()
    assert not run_file(settings).exists()  # a clean exit removes it
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    run_file(settings).write_text(json.dumps({"pid": child.pid, "url": "http://127.0.0.1:9", "token": "local_x"}))
    assert find_server(settings) is None and not run_file(settings).exists()  # stale: ignored and removed
