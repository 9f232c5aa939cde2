"""``lloco users``: accounts, roles, grants and API keys (a thin shell over :class:`app.accounts.store.Accounts`).

The CLI acts as the local admin: whoever can run it owns the catalog's files.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from app.cli.shared import data_table, out, service

users_app = typer.Typer(no_args_is_help=True, help="Accounts: users, roles, collection grants and API keys.")


def _accounts():
    from app.accounts.store import Accounts

    return Accounts(service().sessions)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("password", hide_input=True, confirmation_prompt=True)


ONE_TIME_HELP = "A one-time password for someone else: their first sign-in on the web app asks for a new one."


@users_app.command("list")
def users_list(as_json: Annotated[bool, typer.Option("--json", help="Print the users as JSON.")] = False) -> None:
    """Every user: role, granted collections and live API keys."""
    users = _accounts().list_users()
    if as_json:
        print(json.dumps([{"name": u.name, "role": u.role, "created_at": u.created_at.isoformat(timespec="seconds"),
                           "collections": u.collections, "api_keys": u.api_keys,
                           "must_change_password": u.must_change_password} for u in users], indent=2))
        return
    table = data_table("user", "role", "collections", "API keys", "created", "password")
    for u in users:
        table.add_row(u.name, u.role, "(all)" if u.role == "admin" else ", ".join(u.collections) or "-",
                      str(u.api_keys), u.created_at.strftime("%Y-%m-%d %H:%M"),
                      "one-time" if u.must_change_password else "set")
    out.print(table)


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="User name: letters, digits, '_', '.', '@', '-'.")],
    admin: Annotated[bool, typer.Option("--admin", help="An admin (everything); default: an analyst (granted collections only).")] = False,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")] = False,
    one_time: Annotated[bool, typer.Option("--one-time", help=ONE_TIME_HELP)] = False,
) -> None:
    """Create a user; the password is prompted for (twice) unless --password-stdin."""
    user = _accounts().create_user(name, _read_password(password_stdin), role="admin" if admin else "analyst",
                                   one_time=one_time)
    out.print(f"created {user.role} {user.name!r}", highlight=False)


@users_app.command("delete")
def users_delete(name: Annotated[str, typer.Argument(help="The user.")]) -> None:
    """Delete a user with their API keys, grants and conversations (never the last admin)."""
    _accounts().delete_user(name)
    out.print(f"deleted user {name!r}", highlight=False)


@users_app.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument(help="The user.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input.")] = False,
    one_time: Annotated[bool, typer.Option("--one-time", help=ONE_TIME_HELP)] = False,
) -> None:
    """Set a user's password (and lift a sign-in lock)."""
    _accounts().set_password(name, _read_password(password_stdin), one_time=one_time)
    out.print(f"password of {name!r} changed", highlight=False)


@users_app.command("grant")
def users_grant(user: Annotated[str, typer.Argument(help="The analyst.")],
                collection: Annotated[str, typer.Argument(help="The collection they may see and ask.")]) -> None:
    """Let a user see and ask a collection."""
    _accounts().grant(user, collection)
    out.print(f"{user!r} may read {collection!r}", highlight=False)


@users_app.command("revoke")
def users_revoke(user: Annotated[str, typer.Argument(help="The analyst.")],
                 collection: Annotated[str, typer.Argument(help="The collection.")]) -> None:
    """Take a collection grant away."""
    _accounts().revoke(user, collection)
    out.print(f"{user!r} may no longer read {collection!r}", highlight=False)


@users_app.command("key")
def users_key(
    name: Annotated[str, typer.Argument(help="The user.")],
    revoke: Annotated[bool, typer.Option("--revoke", help="Revoke every API key of the user instead of making one.")] = False,
) -> None:
    """Make a new API key for a user: printed once, as the last line (only its digest is stored)."""
    accounts = _accounts()
    if revoke:
        out.print(f"revoked {accounts.revoke_api_keys(name)} API key(s) of {name!r}", highlight=False)
        return
    key = accounts.new_api_key(name)
    out.print(f"new API key for {name!r} (shown once; send it as 'Authorization: Bearer KEY'):", highlight=False)
    print(key)
