"""What every ``lloco`` command module shares: the consoles and the service built from the global flags."""

from __future__ import annotations

from typing import Any, ClassVar

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
