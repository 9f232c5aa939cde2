"""Accounts: users, roles, passwords, API keys and per-collection grants (issue 11).

Two roles: an **admin** does everything; an **analyst** sees and asks only the collections granted
to them, and only their own conversations. Passwords are hashed with argon2 (argon2-cffi's
defaults, rehashed on sign-in when those change); API keys are random 256-bit tokens shown once and
stored as SHA-256 digests. Consecutive wrong passwords lock the account for a while
(:data:`LOCKOUT_AFTER`, :data:`LOCKOUT_S`), so passwords can't be guessed at speed. The policy of
who may do what is :mod:`app.accounts.access`'s; this module only keeps the records.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, get_args

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from indexing.account_catalog import ApiKey, Grant, User
from indexing.catalog import Collection, utc_now, collection_named
from model.errors import AuthenticationError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from sqlalchemy.orm import sessionmaker

log = logging.getLogger(__name__)
Role = Literal["admin", "analyst"]
ROLES: tuple[str, ...] = get_args(Role)
USER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes anything, but a megabyte "password" is an attack, not a password
LOCKOUT_AFTER = 5  # consecutive wrong passwords ...
LOCKOUT_S = 60  # ... lock sign-in for this long
KEY_PREFIX = "lloco_"
FIRST_ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    """Who acts: a signed-in user, or the local admin (the CLI, which owns the files)."""

    name: str
    role: Role
    user_id: int | None = None  # None: the local admin
    must_change_password: bool = False  # signed in with a one-time password: a new one comes first

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


LOCAL_ADMIN = Principal("local-admin", "admin", None)


@dataclass(frozen=True)
class UserInfo:
    id: int
    name: str
    role: str
    created_at: datetime
    collections: list[str]  # granted (an admin reads every collection whatever its grants)
    api_keys: int  # keys not revoked
    must_change_password: bool = False  # a one-time password: the next sign-in chooses a new one

    @property
    def principal(self) -> Principal:
        return Principal(self.name, self.role, self.id)  # type: ignore[arg-type]


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def check_password(password: str) -> str:
    """The password if acceptable, else a precise error (length only: a passphrase of any characters is fine)."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInputError(f"the password is too short: at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise InvalidInputError(f"the password is too long: at most {MAX_PASSWORD} characters")
    return password


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class Accounts:
    """Users, keys and grants in the catalog behind ``sessions``."""

    def __init__(self, sessions: sessionmaker) -> None:
        self.sessions = sessions

    # users ------------------------------------------------------------------------------
    def create_user(self, name: str, password: str, *, role: Role = "analyst", one_time: bool = False) -> UserInfo:
        """A new user; ``one_time``: the password is one an admin chose for them, changed at the first sign-in."""
        if not USER_NAME_RE.match(name or ""):
            raise InvalidInputError(f"invalid user name {name!r}: use letters, digits, '_', '.', '@', '-' (at most 100)")
        if role not in ROLES:
            raise InvalidInputError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
        digest = _hasher().hash(check_password(password))
        try:
            with self.sessions.begin() as session:
                session.add(User(name=name, role=role, password_hash=digest, must_change_password=one_time))
        except IntegrityError:
            raise InvalidInputError(f"user {name!r} already exists") from None
        return self.get_user(name)

    def _user(self, session, name: str) -> User:
        user = session.scalars(select(User).where(User.name == name)).first()
        if user is None:
            raise NotFoundError(f"no user named {name!r} (see `lloco users list`)")
        return user

    def get_user(self, name: str) -> UserInfo:
        with self.sessions() as session:
            return self._info(session, self._user(session, name))

    def get_user_by_id(self, user_id: int) -> UserInfo:
        with self.sessions() as session:
            user = session.get(User, user_id)
            if user is None:
                raise NotFoundError(f"no user #{user_id} (was it deleted?)")
            return self._info(session, user)

    def _info(self, session, user: User) -> UserInfo:
        names = list(session.scalars(select(Collection.name).join(Grant, Grant.collection_id == Collection.id)
                                     .where(Grant.user_id == user.id).order_by(Collection.name)))
        keys = session.scalar(select(func.count()).select_from(ApiKey)
                              .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None)))
        return UserInfo(user.id, user.name, user.role, user.created_at, names, int(keys or 0),
                        bool(user.must_change_password))

    def list_users(self) -> list[UserInfo]:
        with self.sessions() as session:
            return [self._info(session, u) for u in session.scalars(select(User).order_by(User.name))]

    def has_users(self) -> bool:
        with self.sessions() as session:
            return bool(session.scalar(select(func.count()).select_from(User)))

    def delete_user(self, name: str) -> None:
        """Delete a user with their keys, grants and conversations; the last admin stays."""
        with self.sessions.begin() as session:
            user = self._user(session, name)
            if user.role == "admin" and session.scalar(select(func.count()).select_from(User)
                                                       .where(User.role == "admin")) == 1:
                raise InvalidInputError(f"{name!r} is the last admin: create another admin first")
            session.delete(user)

    def set_password(self, name: str, password: str, *, one_time: bool = False) -> None:
        """An admin sets a user's password (and lifts a sign-in lock); ``one_time``: the user chooses a new
        one at the next sign-in."""
        digest = _hasher().hash(check_password(password))
        with self.sessions.begin() as session:
            user = self._user(session, name)
            user.password_hash, user.failed_logins, user.locked_until = digest, 0, None
            user.must_change_password = one_time

    def change_password(self, name: str, current: str, new: str) -> Principal:
        """A user replaces their own password (the first sign-in with a one-time one must): ``current``
        is checked as a sign-in is (wrong ones count towards the lock); the new one must differ from
        it. The user's principal, free to use every page."""
        self.sign_in(name, current)
        if new == current:
            raise InvalidInputError("choose a password other than the one-time one")
        digest = _hasher().hash(check_password(new))
        with self.sessions.begin() as session:
            user = self._user(session, name)
            user.password_hash, user.must_change_password = digest, False
            return Principal(user.name, user.role, user.id)  # type: ignore[arg-type]

    def bootstrap_admin(self) -> tuple[str, str] | None:
        """On a catalog with no users, create the first admin with a random one-time password (changed at
        its first sign-in) and return (name, password) to print once; None when users exist."""
        if self.has_users():
            return None
        password = secrets.token_urlsafe(12)
        try:
            self.create_user(FIRST_ADMIN, password, role="admin", one_time=True)
        except InvalidInputError:  # another process created it between the check and here
            return None
        return FIRST_ADMIN, password

    # grants -----------------------------------------------------------------------------
    def grant(self, name: str, collection: str) -> None:
        with self.sessions.begin() as session:
            user = self._user(session, name)
            coll = collection_named(session, collection)
            exists = session.scalar(select(Grant.id).where(Grant.user_id == user.id, Grant.collection_id == coll.id))
            if exists is None:
                session.add(Grant(user_id=user.id, collection_id=coll.id))

    def revoke(self, name: str, collection: str) -> None:
        with self.sessions.begin() as session:
            user = self._user(session, name)
            coll = collection_named(session, collection)
            grant = session.scalars(select(Grant).where(Grant.user_id == user.id, Grant.collection_id == coll.id)).first()
            if grant is None:
                raise NotFoundError(f"{name!r} has no grant on {collection!r}")
            session.delete(grant)

    def granted_collection_ids(self, user_id: int) -> set[int]:
        with self.sessions() as session:
            return set(session.scalars(select(Grant.collection_id).where(Grant.user_id == user_id)))

    # API keys ---------------------------------------------------------------------------
    def new_api_key(self, name: str) -> str:
        """A new key for ``name``: returned once, only its digest is stored."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            user = self._user(session, name)
            session.add(ApiKey(user_id=user.id, digest=key_digest(key), prefix=key[: len(KEY_PREFIX) + 6]))
        return key

    def revoke_api_keys(self, name: str) -> int:
        """Revoke every key of ``name``; how many were live."""
        with self.sessions.begin() as session:
            user = self._user(session, name)
            keys = session.scalars(select(ApiKey).where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))).all()
            for key in keys:
                key.revoked_at = utc_now()
            return len(keys)

    # signing in -------------------------------------------------------------------------
    def sign_in(self, name: str, password: str) -> Principal:
        """The user's principal if the password is right; the same error for an unknown name as for a
        wrong password (names don't leak); an account locked after LOCKOUT_AFTER wrong passwords."""
        wrong = AuthenticationError("wrong user name or password")
        with self.sessions.begin() as session:
            user = session.scalars(select(User).where(User.name == name)).first()
            if user is None or not isinstance(password, str) or len(password) > MAX_PASSWORD:
                log.warning("refused: sign-in as %r (no such user, or an absurd password)", name)
                raise wrong
            now = utc_now()
            if user.locked_until and user.locked_until > now:
                wait = int((user.locked_until - now).total_seconds()) + 1
                log.warning("refused: sign-in as %r while locked (%d s left)", name, wait)
                raise AuthenticationError(f"too many wrong passwords: sign-in for {name!r} is locked for {wait} s")
            from argon2.exceptions import VerificationError

            hasher = _hasher()
            try:
                hasher.verify(user.password_hash, password)
            except VerificationError:
                user.failed_logins += 1
                if user.failed_logins >= LOCKOUT_AFTER:
                    user.failed_logins, user.locked_until = 0, now + timedelta(seconds=LOCKOUT_S)
                session.flush()
                failed = True
            else:
                failed = False
                user.failed_logins, user.locked_until = 0, None
                if hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = hasher.hash(password)
            principal = Principal(user.name, user.role, user.id,  # type: ignore[arg-type]
                                  must_change_password=bool(user.must_change_password))
        if failed:  # raised after the commit, so the failure count is kept
            log.warning("refused: sign-in as %r with a wrong password", name)
            raise wrong
        return principal

    def principal_for_key(self, key: str) -> Principal:
        """The principal of a live API key."""
        if not isinstance(key, str) or not key.startswith(KEY_PREFIX):
            raise AuthenticationError("unknown or revoked API key")
        with self.sessions() as session:
            row = session.execute(select(User, ApiKey.revoked_at).join(ApiKey, ApiKey.user_id == User.id)
                                  .where(ApiKey.digest == key_digest(key))).first()
        if row is None or row[1] is not None:
            log.warning("refused: an %s API key (%s...)", "unknown" if row is None else "revoked", key[:len(KEY_PREFIX) + 6])
            raise AuthenticationError("unknown or revoked API key")
        return Principal(row[0].name, row[0].role, row[0].id)

