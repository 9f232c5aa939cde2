"""SQL models of accounts (schema: migration 0005): users with a role and an argon2 password hash,
their API keys (stored as SHA-256 digests, never in clear) and per-collection read grants.

Imported by :mod:`indexing.schema`, so ``Base.metadata`` holds these tables too.
Deleting a user deletes their keys, grants and conversations; deleting a collection its grants
(``ON DELETE CASCADE``).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from indexing.catalog import Base, utc_now


class User(Base):
    """A person or program that signs in: ``role`` is 'admin' or 'analyst'."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # consecutive wrong passwords
    locked_until: Mapped[datetime | None] = mapped_column(default=None)  # sign-in refused until then
    # a one-time password (the first admin's, or one an admin set): the next sign-in must choose a new one (0014)
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ApiKey(Base):
    """One API key of a user: the SHA-256 of the key (keys are random 256-bit tokens, so a fast hash
    is enough) and its first characters, to tell keys apart in listings."""

    __tablename__ = "api_keys"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Grant(Base):
    """An analyst may see and ask one collection."""

    __tablename__ = "grants"
    __table_args__ = (UniqueConstraint("user_id", "collection_id", name="uq_grant"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
