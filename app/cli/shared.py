"""What every ``lloco`` command module shares: the consoles and the service built from the global flags."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import typer

from rich.console import Console
from rich.table import Table

from app.config import Settings

out = Console()
err = Console(stderr=True)


def data_table(*headers: str, **options: Any) -> Table:
    """A table of data for the terminal: cells and headers that do not fit the terminal's width
    (80 columns when the output is not a terminal) wrap and fold, never cut to "docum…"; ``--json``
    gives the same data whole."""
    table = Table(**options)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


class State:
    overrides: ClassVar[dict[str, Any]] = {}  # the global flags, set by the main callback
    service: ClassVar[Any] = None


def service():
    """The service, built once per command from the settings and the global flags."""
    if State.service is None:
        from app.core.service import LlocoService

        State.service = LlocoService(Settings(**State.overrides))
    return State.service


def _csv(value: str | None) -> tuple[str, ...] | None:
    return tuple(x.strip() for x in value.split(",") if x.strip()) if value else None


JSON_OPTION = typer.Option("--json", help="Print the list as JSON.")


def print_json(items: list) -> None:
    """Dataclass items as a JSON list (what `--json` prints)."""
    from dataclasses import asdict

    print(json.dumps([asdict(i) for i in items], indent=2, default=str))


def human_size(n: int) -> str:
    """Bytes as "3.2 MB" or "14 KB"."""
    return f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{n / 1024:.0f} KB"
