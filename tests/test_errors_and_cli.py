"""Bad requests get precise errors and a non-zero exit, and change nothing; the CLI end to end."""

from __future__ import annotations


import pytest

from app.cli import main as cli
from tests.cli_runner import flat, run_cli
from model.errors import InvalidInputError, NotFoundError


@pytest.fixture
def cli_service(monkeypatch, service):
    """Make the CLI use the tiny-model service."""
    monkeypatch.setattr(cli.State, "service", service)
    return service


def test_service_rejects_bad_requests(service, tmp_path):
    with pytest.raises(NotFoundError, match="no collection named 'nope'"):
        service.ask("nope", "why?")
    service.create_collection("c")
    with pytest.raises(InvalidInputError, match="already exists"):
        service.create_collection("c")
    for bad in ("", "a b", "../x", "x" * 101):
        with pytest.raises(InvalidInputError, match="invalid collection name"):
            service.create_collection(bad)
    with pytest.raises(InvalidInputError, match="question is empty"):
        service.ask("c", "   ")
    for k in (0, -3, 101):
        with pytest.raises(InvalidInputError, match="top-k"):
            service.ask("c", "why?", top_k=k)
    with pytest.raises(InvalidInputError, match="unknown mode"):
        service.ask("c", "why?", mode="magic")
    with pytest.raises(NotFoundError, match="no document"):
        service.delete_document("c", "missing.pdf")
    with pytest.raises(InvalidInputError, match="no files"):
        service.ingest("c", [])
    (tmp_path / "plain").mkdir()
    with pytest.raises(NotFoundError):  # a folder that is not an adapter (tmp_path itself holds the home: refused as state)
        service.set_adapter("c", tmp_path / "plain")
    assert [c.name for c in service.list_collections()] == ["c"]


def test_collection_built_with_other_models_is_refused(service, settings, tiny_decoder):
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    service.create_collection("c")
    other = LlocoService(settings.model_copy(update={"embedder": "other-embedder"}), decoder=tiny_decoder,
                         embedder=HashEmbedder())
    with pytest.raises(InvalidInputError, match="built with embedder 'hash-64'"):
        other.ask("c", "why?")


def test_cli_end_to_end(cli_service, monkeypatch, capsys, pdf_factory, tmp_path):
    pdf = pdf_factory("guide.pdf", ["Lamps and lighthouses. " * 10, "Bees and flowers. " * 10])
    code, out, _ = run_cli(monkeypatch, capsys, "collections", "create", "guides")
    assert code == 0 and "created collection guides" in flat(out)
    code, out, _ = run_cli(monkeypatch, capsys, "ingest", "guides", str(pdf))
    assert code == 0 and "ingested" in flat(out) and "guide.pdf" in flat(out)
    code, out, _ = run_cli(monkeypatch, capsys, "docs", "list", "guides")
    assert code == 0 and "guide.pdf" in flat(out) and "ready" in flat(out)
    for mode in ("lloco", "rag", "full"):
        code, out, err = run_cli(monkeypatch, capsys, "ask", "guides", "Where are the bees?", "--mode", mode, "--top-k", "2")
        assert code == 0, out
        assert "Start `lloco api`" in flat(err) and "lloco api" not in flat(out)  # the load is announced, on stderr
        assert "guide.pdf, p. 2" in flat(out) and f"mode {mode}" in flat(out) and "prompt tokens" in flat(out)
    code, out, _ = run_cli(monkeypatch, capsys, "collections", "list")
    assert code == 0 and "guides" in flat(out)
    code, out, _ = run_cli(monkeypatch, capsys, "docs", "delete", "guides", "guide.pdf")
    assert code == 0 and "deleted guide.pdf" in flat(out)
    code, out, _ = run_cli(monkeypatch, capsys, "collections", "delete", "guides", "--yes")
    assert code == 0 and cli_service.list_collections() == []


def test_cli_errors_exit_non_zero_and_change_nothing(cli_service, monkeypatch, capsys, tmp_path):
    run_cli(monkeypatch, capsys, "collections", "create", "c")
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4 garbage")
    cases = [
        (("ask", "nope", "why?"), "no collection named 'nope'"),
        (("ask", "c", ""), "question is empty"),
        (("ask", "c", "why?", "--top-k", "0"), "top-k must be between 1 and 100"),
        (("docs", "delete", "c", "ghost.pdf"), "no document 'ghost.pdf'"),
        (("docs", "list", "nope"), "no collection named 'nope'"),
        (("collections", "delete", "nope", "--yes"), "no collection named 'nope'"),
        (("ingest", "c", str(bad)), "corrupt or unreadable PDF"),
    ]
    for args, message in cases:
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code != 0, args
        assert message in " ".join((out + err).split()), (args, out, err)
    docs = cli_service.list_documents("c")
    assert [(d.filename, d.status) for d in docs] == [("broken.pdf", "failed")]


def test_cli_rejects_bad_settings(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "--home", str(tmp_path), "--set", "top_k=0", "collections", "list")
    assert code == 2 and "top_k" in flat(err)
    code, _, err = run_cli(monkeypatch, capsys, "--home", str(tmp_path), "--set", "nonsense=1", "collections", "list")
    assert code != 0 and "nonsense" in flat(err)


def test_ids_past_the_catalogs_range_are_not_found_never_an_overflow(service, monkeypatch, capsys):
    """Issue 26: a huge id reached SQLite's driver (OverflowError, a traceback)."""
    from app.core import chats
    from app.jobs import store as job_store
    from model.errors import NotFoundError

    huge = 99999999999999999999999
    for lookup in (lambda: job_store.get_job(service.sessions, huge), lambda: chats.get_chat(service.sessions, huge)):
        with pytest.raises(NotFoundError):
            lookup()
    code, _, stderr = run_cli(monkeypatch, capsys, "jobs", "cancel", str(huge), service=service)
    assert code != 0 and "no job" in flat(stderr)
