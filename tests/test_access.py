"""The access policy (issue 11; app/accounts/access.py) through the service layer: every action x {admin,
analyst with a grant, analyst without}, allowed or refused as it should, refusals logged, and
conversations private to their user."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from app.accounts.access import ActingService
from app.accounts.store import Accounts
from model.errors import InvalidInputError, NotFoundError, PermissionDeniedError


@pytest.fixture
def world(service, pdf_factory):
    """Collection 'alpha' with one PDF; an admin, an analyst granted alpha, one granted nothing."""
    service.create_collection("alpha")
    service.ingest("alpha", [pdf_factory("keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])])
    accounts = Accounts(service.sessions)
    users = {"admin": accounts.create_user("ann", "correct horse", role="admin"),
             "granted": accounts.create_user("bob", "battery staple"),
             "stranger": accounts.create_user("eve", "eavesdropper!")}
    accounts.grant("bob", "alpha")
    return {who: ActingService(service, u.principal, accounts) for who, u in users.items()}, pdf_factory


def _doc_id(svc) -> int:
    return svc.service.list_documents("alpha")[0].id


READS = {
    "get_collection": lambda s: s.get_collection("alpha"),
    "outdated_models": lambda s: s.outdated_models("alpha"),
    "list_documents": lambda s: s.list_documents("alpha"),
    "ask": lambda s: s.ask("alpha", "What did the keeper light?", mode="rag", top_k=1).read(),
    "retrieve": lambda s: s.retrieve("alpha", "keeper", top_k=1),
    "score_continuations": lambda s: s.score_continuations("alpha", "Who?", [" the keeper"], mode="rag", top_k=1),
    "document_file": lambda s: s.document_file(_doc_id(s)),
    "start_chat": lambda s: s.start_chat("alpha"),
    "list_chats": lambda s: s.list_chats("alpha"),
}
ADMIN_ONLY = {
    "create_collection": lambda s, f: s.create_collection("gamma"),
    "ingest": lambda s, f: s.ingest("alpha", [f("more.pdf", ["More text about lamps."])]),
    "rebuild_collection": lambda s, f: s.rebuild_collection("alpha"),
    "set_adapter": lambda s, f: s.set_adapter("alpha", None),
    "delete_document": lambda s, f: s.delete_document("alpha", "keeper.pdf"),
    "delete_collection": lambda s, f: s.delete_collection("alpha"),
}


@pytest.mark.parametrize("action", list(READS))
def test_reading_a_collection_needs_admin_or_a_grant(world, action, caplog):
    svcs, _ = world
    READS[action](svcs["admin"])
    READS[action](svcs["granted"])
    with caplog.at_level(logging.WARNING, logger="app.accounts.access"), \
            pytest.raises(NotFoundError, match="no collection named 'alpha'"):  # as if it did not exist
        READS[action](svcs["stranger"])
    assert any("refused: eve (analyst)" in r.getMessage() and "'alpha'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("action", list(ADMIN_ONLY))
def test_changing_collections_is_for_admins_only(world, action, caplog):
    svcs, make_pdf = world
    before = svcs["admin"].service.list_documents("alpha")
    # an analyst who may read alpha is refused; one who may not is told it does not exist (names don't leak)
    stranger_error = (PermissionDeniedError, "only an admin may") if action == "create_collection" else \
        (NotFoundError, "no collection named 'alpha'")
    for who, (error, message) in (("granted", (PermissionDeniedError, "only an admin may")), ("stranger", stranger_error)):
        with caplog.at_level(logging.WARNING, logger="app.accounts.access"), pytest.raises(error, match=message):
            ADMIN_ONLY[action](svcs[who], make_pdf)
    assert svcs["admin"].service.list_documents("alpha") == before  # nothing changed
    assert [c.name for c in svcs["admin"].service.list_collections()] == ["alpha"]
    assert sum("refused:" in r.getMessage() for r in caplog.records) == 2
    ADMIN_ONLY[action](svcs["admin"], make_pdf)


def test_each_user_lists_only_the_collections_they_may_read(world):
    svcs, _ = world
    svcs["admin"].create_collection("beta")
    assert [c.name for c in svcs["admin"].list_collections()] == ["alpha", "beta"]
    assert [c.name for c in svcs["granted"].list_collections()] == ["alpha"]
    assert svcs["stranger"].list_collections() == []
    assert svcs["granted"].can_read("alpha") and not svcs["granted"].can_read("beta")
    assert not svcs["granted"].can_read("nonexistent")


def test_a_missing_collection_and_a_forbidden_one_read_the_same(world):
    svcs, _ = world
    with pytest.raises(NotFoundError) as missing:
        svcs["stranger"].get_collection("nonexistent")
    with pytest.raises(NotFoundError) as forbidden:
        svcs["stranger"].get_collection("alpha")
    assert str(missing.value).replace("nonexistent", "X") == str(forbidden.value).replace("alpha", "X")


def test_conversations_belong_to_their_user(world):
    svcs, _ = world
    mine = svcs["granted"].start_chat("alpha")
    svcs["granted"].record_message(mine.id, "user", "What did the keeper light?")
    theirs = svcs["admin"].start_chat("alpha")
    assert [c.id for c in svcs["granted"].list_chats("alpha")] == [mine.id]
    assert [c.id for c in svcs["admin"].list_chats("alpha")] == [theirs.id]  # admins don't see others' chats
    assert [m.role for m in svcs["granted"].chat_messages(mine.id)] == ["user"]
    for action in (lambda s: s.chat_messages(mine.id), lambda s: s.record_message(mine.id, "user", "hi"),
                   lambda s: s.delete_chat(mine.id)):
        with pytest.raises(NotFoundError, match=f"no chat #{mine.id}"):
            action(svcs["admin"])
    assert len(svcs["granted"].chat_messages(mine.id)) == 1  # nothing changed
    svcs["granted"].delete_chat(mine.id)
    # the CLI (the plain service, the local admin) still sees every conversation of a collection
    assert [c.id for c in svcs["admin"].service.list_chats("alpha")] == [theirs.id]


def test_a_revoked_grant_takes_effect_at_once(world):
    svcs, _ = world
    assert svcs["granted"].can_read("alpha")
    svcs["granted"].accounts.revoke("bob", "alpha")
    with pytest.raises(NotFoundError):
        svcs["granted"].ask("alpha", "What did the keeper light?", mode="rag")


def test_citation_pages_follow_the_documents_collection(world):
    svcs, _ = world
    [(citation, _text)] = svcs["admin"].retrieve("alpha", "keeper", top_k=1)
    assert svcs["granted"].citation_pages(citation)  # a PDF page image
    with pytest.raises(NotFoundError):
        svcs["stranger"].citation_pages(citation)
    assert isinstance(svcs["admin"].document_file(citation.document_id), Path)


def test_server_paths_come_from_configured_roots(world, tmp_path):
    svcs, _ = world
    admin = svcs["admin"]
    inside = admin.settings.home / "adapters" / "mine"
    assert admin.check_server_path(inside, "adapter folders") == inside.resolve()
    for outside in ("/etc", str(tmp_path / "elsewhere"), str(admin.settings.home / ".." / "..")):
        with pytest.raises(InvalidInputError, match="under a configured server root"):
            admin.check_server_path(outside, "adapter folders")
    with pytest.raises(InvalidInputError, match="under a configured server root"):
        admin.set_adapter("alpha", Path("/etc/passwd"))  # refused before anything is read there
    with pytest.raises(PermissionDeniedError):
        svcs["granted"].check_server_path(inside, "adapter folders")
    assert svcs["admin"].service.get_collection("alpha").adapter_path is None
