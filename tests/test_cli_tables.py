"""CLI tables fold what does not fit instead of cutting it (issue 27, item 7)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table

from app.cli.shared import data_table

HEADERS = ("name", "documents", "failed", "chunks", "size", "decoder", "kappa", "adapter", "created")
ROW = ("pepsi-2023-q1", "16", "0", "67", "1.2 MB", "smollm2-135m", "8",
       "/srv/lloco/adapters/pepsi-2023-q1-reader-v2-final", "2026-12-07 10:00")


def _render(table: Table, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(table)
    return console.file.getvalue()


def test_a_wide_table_folds_every_cell_at_80_columns():
    plain = Table(*HEADERS)
    plain.add_row(*ROW)
    assert "…" in _render(plain)  # what `collections list` printed: "docum…", "smoll…"
    table = data_table(*HEADERS)
    table.add_row(*ROW)
    text = _render(table)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    columns = [""] * len(HEADERS)  # each column read top to bottom, its folded pieces joined
    for line in text.splitlines():
        cells = line.replace("┃", "│").split("│")[1:-1]
        if len(cells) == len(HEADERS):
            for i, cell in enumerate(cells):
                columns[i] += cell.replace(" ", "")
    assert columns == [(h + c).replace(" ", "") for h, c in zip(HEADERS, ROW, strict=True)]
