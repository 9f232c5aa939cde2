"""``lloco backup`` / ``lloco restore``: a thin shell over :mod:`app.backup` (no model is loaded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.shared import State, out
from app.config import Settings


def _report(result, *, verb: str, as_json: bool) -> None:  # noqa: ANN001 - app.backup.BackupResult
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
        return
    rows = ", ".join(f"{n} {table}" for table, n in result.rows.items() if n) or "no rows"
    out.print(f"{verb} {result.path}: {len(result.collections)} collections ({', '.join(result.collections) or '-'}), "
              f"{rows}; {result.files} files, {result.bytes / 1e6:.1f} MB (catalog schema {result.revision})",
              highlight=False)
    for adapter in result.external_adapters:
        out.print(f"[yellow]note:[/] adapter {adapter} lies outside the home: not in the backup; keep it at that path",
                  highlight=False)
    if result.missing_originals:
        out.print(f"[yellow]note:[/] {result.missing_originals} PDFs had no kept original: their cited pages will not "
                  "render as images", highlight=False)


def backup(
    path: Annotated[Path, typer.Argument(help="A new folder to write the backup into.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print what the backup holds as JSON.")] = False,
) -> None:
    """Back up the catalog, every collection's index files and adapters, and the kept PDFs (safe while the app runs)."""
    from app.backup import backup_home

    _report(backup_home(Settings(**State.overrides), path), verb="backed up into", as_json=as_json)


def restore(
    path: Annotated[Path, typer.Argument(help="A folder written by `lloco backup`.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was restored as JSON.")] = False,
) -> None:
    """Restore a backup into an empty home and catalog (checksums are checked first; nothing stored is overwritten)."""
    from app.backup import restore_home

    _report(restore_home(Settings(**State.overrides), path), verb="restored from", as_json=as_json)
