"""The home's own state is never input (issue 26, item 1): no request, command or job opens the
catalog (or its SQLite side files, indexes, uploads, originals, the run file) as a dataset, adapter,
QA file or document. Opening and closing any descriptor of the catalog file drops this process's
SQLite locks (POSIX locks belong to a process), and the next CLI command then deleted the WAL the
server still wrote into: the catalog split in two. Here a server and CLI processes share one home
while every kind of such path is named, and both must see the same catalog after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.accounts.store import Accounts
from app.api.server import serve_in_thread
from app.training.train import train_collection_adapter
from model.errors import InvalidInputError

REPO = Path(__file__).resolve().parent.parent


def _state_files(settings) -> dict[str, Path]:
    home = settings.home
    return {"catalog": home / "lloco.db", "wal": home / "lloco.db-wal", "shm": home / "lloco.db-shm",
            "journal": home / "lloco.db-journal", "index": settings.collection_dir(1) / "faiss.index",
            "collections": home / "collections", "upload": settings.uploads_dir / "7" / "0" / "a.txt",
            "original": settings.originals_dir / "ab" / "cd.pdf", "models": settings.resolved_model_cache / "x",
            "run file": settings.run_file, "settings file": home / "lloco.toml", "home": home}


def test_every_kind_of_state_file_is_named_and_ordinary_files_are_not(service, tmp_path):
    settings = service.settings  # the service made the catalog: lloco.db exists
    for kind, path in _state_files(settings).items():
        assert settings.home_state(path) is not None, kind
        with pytest.raises(InvalidInputError):
            settings.refuse_state(path, "a dataset file")
    (tmp_path / "link.db").symlink_to(settings.home / "lloco.db")
    os.link(settings.home / "lloco.db", tmp_path / "hard.db")  # the same file by another name
    assert "catalog" in settings.home_state(tmp_path / "link.db")
    assert "catalog" in settings.home_state(tmp_path / "hard.db")
    assert settings.home_state(tmp_path) is not None  # a folder above the home holds it
    trained = settings.collection_dir(1) / "adapters" / "20261207-120000"  # where collection adapters are trained
    for fine in (settings.home / "adapters" / "c", settings.home / "eval-docs" / "q.txt", tmp_path / "data.jsonl", trained):
        assert settings.home_state(fine) is None, fine


def test_a_postgres_catalog_has_no_file_but_the_rest_of_the_home_is_still_state(settings):
    pg = settings.model_copy(update={"database_url": "postgresql+psycopg://u:p@localhost/db"})
    assert pg.catalog_file is None and pg.home_state(pg.home / "lloco.db") is None
    assert pg.home_state(pg.home / "collections" / "3") is not None


def test_the_service_refuses_state_as_input_and_a_folder_above_the_home_leaves_it_out(service, tmp_path):
    settings = service.settings
    service.create_collection("c")
    db = settings.home / "lloco.db"
    for call in (lambda: service.ingest("c", [db]),
                 lambda: service.ingest("c", [settings.home]),
                 lambda: service.set_adapter("c", settings.home / "lloco.db-wal"),
                 lambda: train_collection_adapter(service, "c", qa_file=db, steps=1)):
        with pytest.raises(InvalidInputError, match="may not be"):
            call()
    (tmp_path / "note.txt").write_text("The keeper lit the lamp at dusk every evening of the year. " * 6)
    results = service.ingest("c", [tmp_path])  # the home is inside tmp_path: its files are reported, not read
    by_name = {Path(r.path).name: r for r in results}
    assert by_name["note.txt"].status == "ingested"
    assert by_name["lloco.db"].status == "failed" and "catalog" in by_name["lloco.db"].error
    assert {r.status for name, r in by_name.items() if name != "note.txt"} == {"failed"}
    assert [d.filename for d in service.list_documents("c")] == ["note.txt"]


def test_eval_refuses_the_catalog_as_its_dataset(service):
    from app.eval.runner import EvalSpec, run_eval

    with pytest.raises(InvalidInputError, match="catalog"):
        run_eval(service, EvalSpec(dataset="squad", path=str(service.settings.home / "lloco.db"), modes=("rag",)))


def _cli(settings, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    """``lloco ARGS`` in a process of its own on the same home (locks are per process)."""
    env = {**os.environ, "LLOCO_HOME": str(settings.home), "LLOCO_DECODER": settings.decoder,
           "LLOCO_EMBEDDER": settings.embedder, "LLOCO_COMPRESSOR": settings.compressor, "COLUMNS": "10000"}
    return subprocess.run([sys.executable, "-m", "app", *args], cwd=REPO, env=env, input=stdin, capture_output=True,
                          text=True, timeout=300, check=False)


def _deleted_catalog_descriptors(settings) -> list[str]:
    fds = Path("/proc/self/fd")
    if not fds.is_dir():
        return []
    out = []
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(settings.home / "lloco.db")) and target.endswith("(deleted)"):
            out.append(target)
    return out


def test_a_server_and_the_cli_on_one_home_see_one_catalog_whatever_paths_are_named(service, tmp_path):
    settings = service.settings
    accounts = Accounts(service.sessions)
    accounts.create_user("adm", "adminpassword1", role="admin")
    key = {"Authorization": f"Bearer {accounts.new_api_key('adm')}"}
    service.create_collection("c")
    (tmp_path / "a.txt").write_text("The keeper lit the lamp at dusk every evening of the year. " * 6)
    service.ingest("c", [tmp_path / "a.txt"])
    with serve_in_thread(service) as base, httpx.Client(base_url=base, headers=key, timeout=60) as client:
        for kind, path in _state_files(settings).items():
            for dataset in ("squad", "quality", "needle"):
                reply = client.post("/api/eval/runs", json={"dataset": dataset, "path": str(path), "limit": 1,
                                                             "modes": ["rag"]})
                assert reply.status_code == 400, (kind, reply.text)
                assert "may not be" in reply.json()["error"]["message"]
        assert client.get("/api/jobs/1").status_code == 404  # nothing was queued
        made = _cli(settings, "users", "create", "x2", "--password-stdin", stdin="xpassword12345\n")
        assert made.returncode == 0, made.stderr
        assert client.post("/api/collections", json={"name": "made_by_api"}).status_code == 201
        listed = _cli(settings, "collections", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert sorted(c["name"] for c in json.loads(listed.stdout)) == ["c", "made_by_api"]
        assert "x2" in {u.name for u in accounts.list_users()}  # the CLI's write, seen by the server
        assert _deleted_catalog_descriptors(settings) == []
    after = _cli(settings, "collections", "list", "--json")
    assert sorted(c["name"] for c in json.loads(after.stdout)) == ["c", "made_by_api"]
