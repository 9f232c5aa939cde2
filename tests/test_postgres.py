"""The catalog on a real PostgreSQL server (set LLOCO_TEST_POSTGRES_URL; .ci/run starts one).

Each test gets a database of its own, created and dropped here.
"""

from __future__ import annotations

import pytest

from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.skipif(not POSTGRES_URL, reason="LLOCO_TEST_POSTGRES_URL is not set: no PostgreSQL server to test on")


def test_migrations_match_models_on_postgres(pg_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from indexing.catalog import open_catalog
    from indexing.schema import metadata

    sessions = open_catalog(pg_url)
    open_catalog(pg_url)  # a second upgrade is a no-op
    with sessions().bind.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_ingest_ask_delete_on_postgres(pg_url, settings, tiny_decoder, pdf_factory, tmp_path):
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    svc = LlocoService(settings.model_copy(update={"database_url": pg_url}), decoder=tiny_decoder, embedder=HashEmbedder())
    svc.create_collection("c")
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf")
    results = svc.ingest("c", [pdf_factory("g.pdf", ["Lamps and lighthouses. " * 10, "Bees and flowers. " * 10]), bad])
    assert [r.status for r in results] == ["ingested", "failed"]
    assert svc.ingest("c", [tmp_path / "g.pdf"])[0].status == "skipped"
    answer = svc.ask("c", "bees?", mode="rag", top_k=1).read()
    assert answer.citations[0].page == 2
    svc.delete_document("c", "g.pdf")
    assert [d.filename for d in svc.list_documents("c")] == ["bad.pdf"]
    svc.delete_collection("c")
    assert svc.list_collections() == []


def test_accounts_grants_and_private_chats_on_postgres(pg_url, settings, tiny_decoder, pdf_factory):
    from app.accounts.access import ActingService
    from app.accounts.store import Accounts
    from app.core.service import LlocoService
    from model.errors import AuthenticationError, NotFoundError
    from tests.fakes import HashEmbedder

    svc = LlocoService(settings.model_copy(update={"database_url": pg_url}), decoder=tiny_decoder, embedder=HashEmbedder())
    svc.create_collection("c")
    svc.create_collection("d")
    accounts = Accounts(svc.sessions)
    bob = accounts.create_user("bob", "battery staple")
    accounts.grant("bob", "c")
    key = accounts.new_api_key("bob")
    assert accounts.principal_for_key(key).name == "bob" and accounts.sign_in("bob", "battery staple").role == "analyst"
    with pytest.raises(AuthenticationError):
        accounts.sign_in("bob", "wrong password")
    acting = ActingService(svc, bob.principal, accounts)
    assert [c.name for c in acting.list_collections()] == ["c"]
    with pytest.raises(NotFoundError):
        acting.get_collection("d")
    chat = acting.start_chat("c")
    assert [x.id for x in acting.list_chats("c")] == [chat.id] and svc.get_chat(chat.id).user_id == bob.id
    svc.delete_collection("c")  # grants and chats go with it
    assert accounts.get_user("bob").collections == []
    accounts.delete_user("bob")
    assert accounts.list_users() == []


def test_text_with_nul_bytes_is_stored_on_postgres(pg_url, settings, tiny_decoder, tmp_path):
    """Issue 12, bug 5: PostgreSQL refuses NUL in text; the loader drops it, so the file goes in."""
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    svc = LlocoService(settings.model_copy(update={"database_url": pg_url}), decoder=tiny_decoder, embedder=HashEmbedder())
    svc.create_collection("c")
    odd = tmp_path / "odd.txt"
    odd.write_bytes(b"x" * 9000 + b" lamps\x00 and\x00 bees")
    good = tmp_path / "good.txt"
    good.write_text("The keeper lit the lamp.")
    assert [r.status for r in svc.ingest("c", [odd, good])] == ["ingested", "ingested"]


def test_backup_from_sqlite_restores_on_postgres_and_back(pg_url, settings, tiny_decoder, pdf_factory, tmp_path):
    from app.backup import backup_home, restore_home
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    svc = LlocoService(settings, decoder=tiny_decoder, embedder=HashEmbedder())
    svc.create_collection("c")
    svc.ingest("c", [pdf_factory("g.pdf", ["Lamps and lighthouses. " * 10, "Bees and flowers. " * 10])])
    before = svc.ask("c", "bees?", mode="lloco", top_k=1).read()
    backup_home(settings, tmp_path / "b")
    on_pg = settings.model_copy(update={"home": tmp_path / "pg-home", "database_url": pg_url})
    restore_home(on_pg, tmp_path / "b")
    pg = LlocoService(on_pg, decoder=tiny_decoder, embedder=HashEmbedder())
    again = pg.ask("c", "bees?", mode="lloco", top_k=1).read()
    assert (again.text, again.citations[0].page) == (before.text, before.citations[0].page)
    pg.ingest("c", [pdf_factory("h.pdf", ["Foghorns in fog. " * 10])])  # id sequences moved past the restored ids
    assert pg.check_collection("c") == [] and len(pg.list_documents("c")) == 2
    backup_home(on_pg, tmp_path / "b2")  # and from PostgreSQL back to SQLite
    restore_home(settings.model_copy(update={"home": tmp_path / "back"}), tmp_path / "b2")
    back = LlocoService(settings.model_copy(update={"home": tmp_path / "back"}), decoder=tiny_decoder, embedder=HashEmbedder())
    assert [d.filename for d in back.list_documents("c")] == ["g.pdf", "h.pdf"] and back.check_collection("c") == []
