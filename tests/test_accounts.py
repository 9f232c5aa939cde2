"""Accounts (issue 11; app/accounts/store.py, migration 0005): users and roles, argon2 passwords, sign-in
lockout, API keys shown once and stored as digests, grants, the first admin, and `lloco users`."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select, text

from app.accounts.store import KEY_PREFIX, LOCKOUT_AFTER, Accounts, key_digest
from indexing.account_catalog import ApiKey, User
from indexing.catalog import open_catalog
from model.errors import AuthenticationError, InvalidInputError, NotFoundError
from tests.cli_runner import flat, run_cli


@pytest.fixture
def accounts(service) -> Accounts:
    service.create_collection("alpha")
    service.create_collection("beta")
    return Accounts(service.sessions)


def test_users_have_roles_and_argon2_hashes_never_the_password(accounts, service):
    accounts.create_user("ann", "correct horse", role="admin")
    bob = accounts.create_user("bob", "battery staple")
    assert (bob.role, bob.collections, bob.api_keys) == ("analyst", [], 0)
    with service.sessions() as session:
        stored = session.scalars(select(User.password_hash).where(User.name == "bob")).one()
    assert stored.startswith("$argon2id$") and "battery staple" not in stored
    assert accounts.sign_in("bob", "battery staple").role == "analyst"
    assert accounts.sign_in("ann", "correct horse").is_admin
    assert [u.name for u in accounts.list_users()] == ["ann", "bob"]


def test_bad_user_input_is_refused_precisely(accounts):
    accounts.create_user("bob", "battery staple")
    with pytest.raises(InvalidInputError, match="already exists"):
        accounts.create_user("bob", "another password")
    with pytest.raises(InvalidInputError, match="too short"):
        accounts.create_user("carl", "short")
    with pytest.raises(InvalidInputError, match="invalid user name"):
        accounts.create_user("../etc", "long enough password")
    with pytest.raises(InvalidInputError, match="unknown role"):
        accounts.create_user("dora", "long enough password", role="root")
    with pytest.raises(NotFoundError, match="no user named 'nobody'"):
        accounts.grant("nobody", "alpha")
    with pytest.raises(NotFoundError, match="no collection named 'gamma'"):
        accounts.grant("bob", "gamma")
    assert [u.name for u in accounts.list_users()] == ["bob"]  # nothing else stored


def test_wrong_passwords_get_one_message_and_lock_the_account(accounts):
    accounts.create_user("bob", "battery staple")
    with pytest.raises(AuthenticationError) as unknown:
        accounts.sign_in("nobody", "battery staple")
    with pytest.raises(AuthenticationError) as wrong:
        accounts.sign_in("bob", "wrong password")
    assert str(unknown.value) == str(wrong.value) == "wrong user name or password"  # names don't leak
    for _ in range(LOCKOUT_AFTER - 1):
        with pytest.raises(AuthenticationError, match="wrong user name or password"):
            accounts.sign_in("bob", "wrong password")
    with pytest.raises(AuthenticationError, match="locked"):
        accounts.sign_in("bob", "battery staple")  # even the right password, while locked
    accounts.set_password("bob", "a new passphrase")  # an admin resets it: the lock goes too
    assert accounts.sign_in("bob", "a new passphrase").name == "bob"
    with pytest.raises(AuthenticationError):
        accounts.sign_in("bob", "battery staple")


def test_api_keys_are_shown_once_stored_as_digests_and_revocable(accounts, service):
    accounts.create_user("bob", "battery staple")
    key = accounts.new_api_key("bob")
    assert key.startswith(KEY_PREFIX) and len(key) > 40
    with service.sessions() as session:
        row = session.scalars(select(ApiKey)).one()
    assert row.digest == key_digest(key) and key not in (row.digest, row.prefix)
    assert accounts.principal_for_key(key).name == "bob"
    other = accounts.new_api_key("bob")
    assert other != key and accounts.get_user("bob").api_keys == 2
    assert accounts.revoke_api_keys("bob") == 2
    for k in (key, other, "lloco_made-up", "", "Bearer x"):
        with pytest.raises(AuthenticationError, match="unknown or revoked API key"):
            accounts.principal_for_key(k)


def test_grants_and_cascades(accounts, service):
    accounts.create_user("bob", "battery staple")
    accounts.grant("bob", "alpha")
    accounts.grant("bob", "alpha")  # idempotent
    assert accounts.get_user("bob").collections == ["alpha"]
    accounts.grant("bob", "beta")
    accounts.revoke("bob", "beta")
    with pytest.raises(NotFoundError, match="no grant"):
        accounts.revoke("bob", "beta")
    service.delete_collection("alpha")
    assert accounts.get_user("bob").collections == []  # the grant went with the collection
    chat = service.start_chat("beta", user_id=accounts.get_user("bob").id)
    accounts.new_api_key("bob")
    accounts.create_user("ann", "correct horse", role="admin")
    accounts.delete_user("bob")
    with service.sessions() as session:
        assert session.execute(text("SELECT count(*) FROM api_keys")).scalar() == 0
        assert session.execute(text("SELECT count(*) FROM chat_sessions WHERE id = :i"), {"i": chat.id}).scalar() == 0


def test_the_last_admin_stays_and_the_first_admin_is_made_once(accounts):
    made = accounts.bootstrap_admin()
    assert made is not None and made[0] == "admin"
    assert accounts.sign_in(*made).is_admin
    assert accounts.bootstrap_admin() is None  # once
    with pytest.raises(InvalidInputError, match="last admin"):
        accounts.delete_user("admin")


def test_migration_0005_upgrades_a_catalog_with_chats(tmp_path):
    from alembic import command
    from alembic.config import Config

    from indexing.catalog import MIGRATIONS, make_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        connection.execute(text("INSERT INTO collections (name, created_at, decoder, embedder, compressor, kappa, "
                                "chunk_tokens, chunk_overlap, embed_dim, hidden_size) VALUES "
                                "('old', '2026-01-01', 'd', 'e', 'c', 8, 256, 32, 64, 64)"))
        connection.execute(text("INSERT INTO chat_sessions (collection_id, title, created_at, updated_at) "
                                "VALUES (1, 'kept', '2026-01-01', '2026-01-01')"))
    sessions = open_catalog(url)  # upgrades to the head
    with sessions() as session:
        assert session.execute(text("SELECT title, user_id FROM chat_sessions")).one() == ("kept", None)
    Accounts(sessions).create_user("bob", "battery staple")


def test_cli_manages_users_with_json_output(service, monkeypatch, capsys):
    import io
    import sys

    def cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        return run_cli(monkeypatch, capsys, *args, service=service)

    service.create_collection("alpha")
    code, _, err = cli("users", "create", "ann", "--admin", "--password-stdin", stdin="correct horse\n")
    assert code == 0, err
    assert cli("users", "create", "bob", "--password-stdin", stdin="battery staple\n")[0] == 0
    assert cli("users", "grant", "bob", "alpha")[0] == 0
    key = cli("users", "key", "bob")[1].strip().splitlines()[-1]
    listed = json.loads(cli("users", "list", "--json")[1])
    assert [(u["name"], u["role"], u["collections"], u["api_keys"]) for u in listed] == \
        [("ann", "admin", [], 0), ("bob", "analyst", ["alpha"], 1)]
    assert Accounts(service.sessions).principal_for_key(key).name == "bob"
    code, _, err = cli("users", "create", "carl", "--password-stdin", stdin="short\n")
    assert code != 0 and "too short" in flat(err)
    assert cli("users", "passwd", "bob", "--password-stdin", stdin="a new passphrase\n")[0] == 0
    assert Accounts(service.sessions).sign_in("bob", "a new passphrase").name == "bob"
    assert cli("users", "key", "bob", "--revoke")[0] == 0
    assert Accounts(service.sessions).get_user("bob").api_keys == 0
    assert cli("users", "revoke", "bob", "alpha")[0] == 0
    assert cli("users", "delete", "bob")[0] == 0
    assert [u["name"] for u in json.loads(cli("users", "list", "--json")[1])] == ["ann"]


def test_single_sign_on_identities_map_to_the_local_user_named_as_their_email(accounts):
    from types import SimpleNamespace

    from app.web.auth import principal_for_oidc

    accounts.create_user("bob@example.org", "battery staple")
    assert principal_for_oidc(accounts, SimpleNamespace(email="bob@example.org")).name == "bob@example.org"
    assert principal_for_oidc(accounts, {"email": "bob@example.org"}).role == "analyst"
    with pytest.raises(AuthenticationError, match="no lloco account for eve@example.org"):
        principal_for_oidc(accounts, SimpleNamespace(email="eve@example.org"))
    with pytest.raises(AuthenticationError, match="no e-mail"):
        principal_for_oidc(accounts, SimpleNamespace(email=None))


def test_a_one_time_password_is_changed_at_the_first_sign_in(accounts):
    """Issue 27: the first admin's printed password (and one an admin sets with one_time) is one-time:
    signing in with it says a new one comes first; the change checks the old one and clears the flag."""
    name, password = accounts.bootstrap_admin()
    assert accounts.sign_in(name, password).must_change_password
    assert accounts.get_user(name).must_change_password
    with pytest.raises(AuthenticationError):
        accounts.change_password(name, "not the one-time one", "my own passphrase")
    with pytest.raises(InvalidInputError, match="other than"):
        accounts.change_password(name, password, password)
    with pytest.raises(InvalidInputError, match="too short"):
        accounts.change_password(name, password, "short")
    changed = accounts.change_password(name, password, "my own passphrase")
    assert changed.is_admin and not changed.must_change_password
    assert not accounts.sign_in(name, "my own passphrase").must_change_password
    with pytest.raises(AuthenticationError):
        accounts.sign_in(name, password)  # the one-time password is gone
    accounts.create_user("bob", "battery staple")
    assert not accounts.sign_in("bob", "battery staple").must_change_password  # a password of one's own
    accounts.set_password("bob", "a temporary one", one_time=True)
    assert accounts.sign_in("bob", "a temporary one").must_change_password
