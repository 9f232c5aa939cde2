"""``lloco backup`` / ``lloco restore``: a round trip keeps every answer, file and row; damaged backups
and non-empty targets are refused without changing anything; a backup taken during an ingest is
consistent; an older schema's backup restores into the current one."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from tests.cli_runner import run_cli


def _fill(svc, pdf_factory, tmp_path):
    """Two collections: PDFs (kept originals), a text file, an attached adapter inside the home, a user."""
    from app.accounts.store import Accounts

    svc.create_collection("docs")
    svc.create_collection("notes")
    svc.ingest("docs", [pdf_factory("lights.pdf", ["Lighthouses guide ships. " * 12, "The lamp burns whale oil. " * 12]),
                        pdf_factory("bees.pdf", ["Bees make honey in July. " * 12])])
    note = tmp_path / "note.txt"
    note.write_text("Edison tested 3,000 filaments in 1879. " * 20)
    svc.ingest("notes", [note])
    svc.delete_document("docs", "bees.pdf")  # erased summary rows and a released original travel as they are
    adapter = svc.settings.collection_dir(svc.get_collection("docs").id) / "adapters" / "a1"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 4}')
    with svc.sessions.begin() as session:  # attached as `lloco train adapter --collection` would
        session.execute(text("UPDATE collections SET adapter_path = :p WHERE name = 'docs'"), {"p": str(adapter)})
    accounts = Accounts(svc.sessions)
    accounts.create_user("ann", "correct horse battery")
    accounts.grant("ann", "docs")
    return adapter


def _answers(svc):
    out = {}  # lloco mode on 'notes' only: 'docs' has the stand-in adapter attached
    for name, question, modes in (("docs", "what does the lamp burn?", ("rag",)),
                                  ("notes", "how many filaments?", ("rag", "lloco"))):
        for mode in modes:
            answer = svc.ask(name, question, mode=mode, top_k=2).read()
            out[name, mode] = (answer.text, [(c.document, c.page, c.snippet) for c in answer.citations])
    return out


def _restored(settings, home, tiny_decoder, **update):
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    return LlocoService(settings.model_copy(update={"home": home, **update}), decoder=tiny_decoder, embedder=HashEmbedder())


def test_round_trip_keeps_rows_files_and_answers(service, settings, tiny_decoder, pdf_factory, tmp_path):
    from app.accounts.store import Accounts
    from app.backup import backup_home, restore_home

    adapter = _fill(service, pdf_factory, tmp_path)
    before = _answers(service)
    made = backup_home(settings, tmp_path / "backup")
    assert made.collections == ["docs", "notes"] and made.rows["documents"] == 2 and made.rows["users"] == 1
    assert made.external_adapters == [] and made.missing_originals == 0
    assert not list(tmp_path.glob(".backup.partial-*"))  # written under a temporary name, renamed when whole
    for pdf in tmp_path.glob("*.pdf"):
        pdf.unlink()  # the page images must come from the restored originals

    restored = restore_home(settings.model_copy(update={"home": tmp_path / "home2"}), tmp_path / "backup")
    assert restored.rows == made.rows
    svc = _restored(settings, tmp_path / "home2", tiny_decoder)
    assert [c.name for c in svc.list_collections()] == ["docs", "notes"]
    assert [(d.filename, d.status, d.n_chunks) for d in svc.list_documents("docs")] == \
        [(d.filename, d.status, d.n_chunks) for d in service.list_documents("docs")]
    assert svc.check_collection("docs") == [] and svc.check_collection("notes") == []
    assert _answers(svc) == before  # the same chunks, embeddings and summary vectors
    docs = svc.get_collection("docs")
    new_adapter = svc.settings.collection_dir(docs.id) / "adapters" / "a1"
    assert docs.adapter_path == str(new_adapter) != str(adapter)  # the path moved with the home
    assert (new_adapter / "adapter_config.json").read_text() == '{"r": 4}'
    lights = svc.list_documents("docs")[0]
    assert svc.document_file(lights.id).is_relative_to(tmp_path / "home2" / "originals")
    assert Accounts(svc.sessions).sign_in("ann", "correct horse battery").name == "ann"
    # the restored home goes on working: new ids do not collide with restored ones
    svc.ingest("docs", [pdf_factory("new.pdf", ["Foghorns sound in fog. " * 12])])
    assert svc.check_collection("docs") == [] and len(svc.list_documents("docs")) == 2


def test_refusals_change_nothing(service, settings, pdf_factory, tmp_path):
    from app.backup import backup_home, restore_home
    from model.errors import InvalidInputError, NotFoundError

    _fill(service, pdf_factory, tmp_path)
    backup_home(settings, tmp_path / "b")
    with pytest.raises(InvalidInputError, match="already exists"):
        backup_home(settings, tmp_path / "b")
    with pytest.raises(NotFoundError, match="no catalog"):
        backup_home(settings.model_copy(update={"home": tmp_path / "nothing"}), tmp_path / "b2")
    with pytest.raises(NotFoundError, match="not a lloco backup"):
        restore_home(settings.model_copy(update={"home": tmp_path / "h"}), tmp_path)
    # into the live home: refused, every row and file kept
    before = [(d.filename, d.n_chunks) for d in service.list_documents("docs")]
    with pytest.raises(InvalidInputError, match="collection files|not empty"):
        restore_home(settings, tmp_path / "b")
    assert [(d.filename, d.n_chunks) for d in service.list_documents("docs")] == before
    with pytest.raises(InvalidInputError, match="not empty"):  # an empty home but a catalog that holds rows
        restore_home(settings.model_copy(update={"home": tmp_path / "h2", "database_url": settings.resolved_database_url}),
                     tmp_path / "b")
    assert not (tmp_path / "h2" / "collections").exists()
    # a damaged file: refused before anything is written
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    summary = next(rel for rel in manifest["files"] if rel.endswith(".f16"))
    damaged = tmp_path / "b" / "home" / summary
    damaged.write_bytes(b"\x01" + damaged.read_bytes()[1:])
    with pytest.raises(InvalidInputError, match="does not match its checksum"):
        restore_home(settings.model_copy(update={"home": tmp_path / "h3"}), tmp_path / "b")
    assert not (tmp_path / "h3").exists()


def test_a_failed_restore_leaves_the_target_empty(service, settings, pdf_factory, tmp_path, monkeypatch):
    from app.backup import backup_home, restore_home
    from indexing import catalog_dump

    _fill(service, pdf_factory, tmp_path)
    backup_home(settings, tmp_path / "b")

    def broken(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(catalog_dump, "_reset_sequences", broken)
    monkeypatch.setattr(catalog_dump, "_rows", broken)
    target = settings.model_copy(update={"home": tmp_path / "h"})
    with pytest.raises(OSError, match="disk full"):
        restore_home(target, tmp_path / "b")
    assert not (tmp_path / "h" / "collections").exists()
    assert catalog_dump.stored_rows(catalog_dump.make_engine(target.resolved_database_url)) == {}
    monkeypatch.undo()
    assert restore_home(target, tmp_path / "b").rows["chunks"] > 0  # and a retry succeeds


def test_a_backup_taken_during_an_ingest_is_consistent(service, settings, tiny_decoder, pdf_factory, tmp_path):
    from app.backup import backup_home, restore_home

    service.create_collection("docs")
    pdfs = [pdf_factory(f"p{i}.pdf", [f"Page about topic {i} and harbour {i}. " * 30] * 3) for i in range(6)]
    ingest = threading.Thread(target=service.ingest, args=("docs", pdfs))
    ingest.start()
    backups = []
    while ingest.is_alive() or not backups:
        backups.append(backup_home(settings, tmp_path / f"b{len(backups)}"))
    ingest.join()
    backups.append(backup_home(settings, tmp_path / "after"))
    assert backups[-1].rows["documents"] == 6
    for i, made in enumerate(backups):
        home = tmp_path / f"home{i}"
        restore_home(settings.model_copy(update={"home": home}), made.path)
        svc = _restored(settings, home, tiny_decoder)
        assert svc.check_collection("docs") == [], f"backup {i} of {len(backups)}"
        assert all(d.status == "ready" and d.n_chunks > 0 for d in svc.list_documents("docs"))


def test_an_older_schema_backup_restores_into_the_head(catalog_at, tmp_path):
    from indexing.catalog import known_revisions
    from indexing.catalog_dump import dump, load, revision_of, snapshot

    url, engine = catalog_at("0006")  # before collections named their summary file
    engine.dispose()
    with snapshot(url) as connection:
        revision, rows = dump(connection, tmp_path / "dump")
    assert revision == "0006" and rows["collections"] == 1
    target = f"sqlite:///{tmp_path / 'new.db'}"
    load(target, tmp_path / "dump", revision, rows)
    with snapshot(target) as connection:
        assert revision_of(connection) == known_revisions()[-1]
        assert connection.execute(text("SELECT name, summary_file FROM collections")).all() == [("old", None)]
    with pytest.raises(Exception, match="does not know"):
        load(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "dump", "9999", rows)


def test_cli_backup_and_restore_with_json(service, settings, pdf_factory, tmp_path, monkeypatch, capsys):
    _fill(service, pdf_factory, tmp_path)
    capsys.readouterr()  # what the ingestion printed is not the command's output
    code, stdout, _ = run_cli(monkeypatch, capsys, "--home", str(settings.home), "backup", str(tmp_path / "b"),
                              "--json", service=service)
    assert code == 0 and json.loads(stdout)["collections"] == ["docs", "notes"]
    code, stdout, _ = run_cli(monkeypatch, capsys, "--home", str(tmp_path / "h"), "restore", str(tmp_path / "b"),
                              "--json", service=service)
    assert code == 0 and json.loads(stdout)["rows"]["documents"] == 2
    code, _, stderr = run_cli(monkeypatch, capsys, "--home", str(tmp_path / "h"), "restore", str(tmp_path / "b"),
                              service=service)
    assert code != 0 and "restore into an empty home" in " ".join(stderr.split())
