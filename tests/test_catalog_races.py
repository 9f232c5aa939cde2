"""The catalog under other processes (issue 12, bug 8): a collection deleted while another lists
them is left out, not an error; a catalog locked past the busy timeout gives a plain message (CLI
exit 3, API 503), never a SQLAlchemy traceback."""

from __future__ import annotations

import sqlite3

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from app.accounts.store import Accounts
from app.api.app import create_app
from indexing.catalog import busy_message
from model.errors import NotFoundError
from tests.cli_runner import flat, run_cli


def _locked() -> OperationalError:
    return OperationalError("UPDATE collections ...", {}, sqlite3.OperationalError("database is locked"))


def test_a_collection_deleted_while_listing_is_left_out(service, monkeypatch):
    for name in ("a", "b", "c"):
        service.create_collection(name)
    real = service.get_collection

    def racing(name: str):
        if name == "b":  # deleted by another process between the listing query and this read
            raise NotFoundError(f"no collection named {name!r}")
        return real(name)

    monkeypatch.setattr(service, "get_collection", racing)
    assert [c.name for c in service.list_collections()] == ["a", "c"]


def test_a_locked_catalog_is_a_plain_message(service, monkeypatch, capsys):
    assert busy_message(_locked()).startswith("the catalog is locked by another process")
    assert busy_message(OperationalError("x", {}, sqlite3.OperationalError("no such table: x"))) is None

    def locked(*_args, **_kwargs):
        raise _locked()

    monkeypatch.setattr(service, "list_collections", locked)
    code, out, err = run_cli(monkeypatch, capsys, "collections", "list", service=service)
    assert code == 3 and "the catalog is locked by another process" in flat(err) and "Traceback" not in err + out

    accounts = Accounts(service.sessions)
    accounts.create_user("ann", "correct horse", role="admin")
    key = accounts.new_api_key("ann")
    with TestClient(create_app(service)) as client:
        response = client.get("/api/collections", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 503 and "locked" in response.json()["error"]["message"]


def test_other_database_errors_are_not_disguised(service, monkeypatch, capsys):
    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT", {}, sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(service, "list_collections", broken)
    with pytest.raises(OperationalError):
        run_cli(monkeypatch, capsys, "collections", "list", service=service)
