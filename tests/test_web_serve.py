"""`make run`'s launcher (app/web/serve.py): the demo is built once, the URL printed, and the
process handed to the Streamlit server on the asked address."""

from __future__ import annotations

import sys

from app.cli.demo import ensure_demo_collection
from app.core.demo import DEMO_COLLECTION
from app.web import serve


def test_demo_built_only_once_every_demo_file_is_in(service):
    assert not serve.demo_built(service)
    ensure_demo_collection(service)
    assert serve.demo_built(service)
    lighthouses = next(d for d in service.list_documents(DEMO_COLLECTION) if d.filename == "lighthouses.pdf")
    service.delete_document(DEMO_COLLECTION, lighthouses.id)
    assert not serve.demo_built(service)


def test_a_demo_built_with_another_compressor_is_rebuilt(service):
    from sqlalchemy import update

    from indexing.catalog import Collection

    ensure_demo_collection(service)
    with service.sessions.begin() as s:  # as if built before an update shipped another compressor
        s.execute(update(Collection).where(Collection.name == DEMO_COLLECTION).values(compressor="lloco-old-k4"))
    assert service.outdated_models(DEMO_COLLECTION) == [f"compressor 'lloco-old-k4' (now {service.compressor.ident!r})"]
    assert not serve.demo_built(service)
    ensure_demo_collection(service)
    assert service.outdated_models(DEMO_COLLECTION) == [] and serve.demo_built(service)
    # the check itself loads no model: a fresh service answers it from the catalog and the checkpoint files
    from app.core.service import LlocoService

    fresh = LlocoService(service.settings)
    assert fresh.outdated_models(DEMO_COLLECTION) == [] and serve.demo_built(fresh)
    assert fresh._compressor is None and fresh._decoder is None
    answer = service.ask(DEMO_COLLECTION, "Who built the Eddystone lighthouse?", mode="lloco").read()
    assert answer.citations and answer.context_tokens == service.compressor.kappa * len(answer.citations)


def test_main_builds_the_demo_prints_the_url_and_execs_streamlit(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(serve, "build_demo", lambda: calls.append("demo"))
    monkeypatch.setattr(serve.os, "execv", lambda exe, argv: calls.append(argv))
    monkeypatch.setattr(serve, "first_admin", lambda: None)
    monkeypatch.delenv("LLOCO_WEB_HOST", raising=False)
    serve.main(["--host", "127.0.0.1", "--port", "8642"])
    assert calls[0] == "demo"
    argv = calls[1]
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"] and argv[4] == str(serve.APP)
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1" and argv[argv.index("--server.port") + 1] == "8642"
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"
    assert "lloco web app: http://127.0.0.1:8642" in capsys.readouterr().out
    calls.clear()
    serve.main(["--no-demo"])
    # by default it listens on this machine only (issue 11: safe defaults)
    assert calls[0][calls[0].index("--server.address") + 1] == "127.0.0.1" and "demo" not in calls


def test_the_first_start_makes_an_admin_once_and_prints_its_password(tmp_path, monkeypatch, capsys):
    from app.accounts.store import Accounts
    from app.config import Settings
    from indexing.catalog import open_catalog

    monkeypatch.setenv("LLOCO_HOME", str(tmp_path / "home"))
    serve.first_admin()
    printed = capsys.readouterr().out
    password = printed.split("one-time password ")[1].split()[0]
    accounts = Accounts(open_catalog(Settings().resolved_database_url))
    assert accounts.sign_in("admin", password).is_admin
    serve.first_admin()
    assert "one-time password" not in capsys.readouterr().out  # once


def test_urls_name_localhost_when_listening_everywhere():
    assert serve.urls("127.0.0.1", 8501) == ["http://127.0.0.1:8501"]
    everywhere = serve.urls("0.0.0.0", 8501)
    assert everywhere[0] == "http://localhost:8501" and all(u.endswith(":8501") for u in everywhere)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_web_app_and_the_api_share_one_process(tmp_path):
    # `make run API=1`: Streamlit and the REST API served by one process (one set of models, one job
    # worker), announced to `lloco ask` like `lloco api`, and the run file gone when it stops
    import json
    import os
    import subprocess
    import time
    import urllib.request

    from app.config import Settings
    from app.api.local import find_server, run_file

    home, web, api = tmp_path / "home", _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLOCO_") or k.startswith("LLOCO_TEST_")}
    env.update(LLOCO_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "app.web.serve", "--no-demo", "--api", "--port", str(web),
                             "--api-port", str(api)], cwd=serve.REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def get(url: str) -> str:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.read().decode()

    try:
        deadline, up = time.monotonic() + 120, False
        while not up and time.monotonic() < deadline:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                up = get(f"http://127.0.0.1:{web}/_stcore/health") == "ok" and "ok" in get(f"http://127.0.0.1:{api}/api/health")
            except OSError:
                time.sleep(0.5)
        assert up, (tmp_path / "server.log").read_text()[-2000:]
        settings = Settings(home=home)
        info = json.loads(run_file(settings).read_text())
        assert info["pid"] == proc.pid  # the API is served by the web app's own process
        assert find_server(settings) == (f"http://127.0.0.1:{api}", info["token"])
        children = subprocess.run(["ps", "--ppid", str(proc.pid), "-o", "pid="], capture_output=True, text=True).stdout
        assert children.strip() == ""  # and no second server process was started
        assert f"lloco API (same process): http://127.0.0.1:{api}" in (tmp_path / "server.log").read_text()
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    assert not run_file(Settings(home=home)).exists()  # a stopped server is not announced


def test_in_one_process_the_pages_use_the_api_servers_service_and_jobs(service):
    from app.jobs.runner import JobRunner
    from app.web.common import get_jobs, get_service, use_service

    jobs = JobRunner(sessions=service.sessions)
    use_service(service, jobs=jobs)
    try:
        assert get_service() is service and get_jobs() is jobs
    finally:
        use_service(None)
