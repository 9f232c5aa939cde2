"""Tables in PDF pages, as Markdown in the page's text (issue 13, item 2).

pypdf reads a financial statement as a stream of cells ("Subscription\\n$ \\n16,388 $ \\n14,573"), so
the row's figures lose their label and their year. A page that looks tabular (several lines with two
or more figures) is read again from its words' positions (pdfplumber, MIT): words on one baseline
make a line, a gap wider than ~0.8 em starts a new cell, and a run of lines with two or more figure
cells (allowing label-only lines such as "Revenue:" and wrapped labels inside) is a table, written as
Markdown rows under its header row, each figure with its column's header (``| Net sales | 2019:
$16,865.2 | 2018: $15,740.4 |``: a statement is longer than a chunk, and a row must say its year). Table finders
were measured first on the FinanceBench evidence pages: pdfplumber's (ruling lines) found only the
shaded rows of statements whose rows alternate shading — every other row lost — and PyMuPDF's
garbled some filings' figures (General Mills' "16,865.2" came out as "168652\\n, .") and is AGPL,
which a product served over a network cannot take on; statements are aligned text more often than
ruled grids, and alignment reads both. The rest of the page is pdfplumber's lines in reading order; a
table that continues the previous page's without a header gets that header again.
:func:`indexing.chunking.chunk_pages` keeps each Markdown table, with the lines just above it (its
heading and caption), out of prose chunks.

A page that cannot be read this way keeps pypdf's text: a table is an improvement, never a reason
to lose a page.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from collections.abc import Collection
from typing import Any

MIN_NUMERIC_LINES = 4  # a page with fewer lines carrying two figures is prose: its words are not re-read
MIN_TABLE_ROWS = 3  # lines with two or more figure cells that make a table
MAX_GAP_LINES = 2  # label-only lines ("Revenue:", a wrapped label) a table may hold between figure rows
CELL_GAP_EM = 0.8  # a horizontal gap wider than this many font sizes starts a new cell
_FIGURE = re.compile(r"^[(\-−–—]?\s*[$€£]?\s*\(?\d[\d,.]*\)?\s*%?\)?$|^[—–-]$")
_YEAR = re.compile(r"^(19|20)\d\d$")
_NUMBER = re.compile(r"\d[\d,.]*")
_CURRENCY = ("$", "€", "£")
_ROW = re.compile(r"^\|.*\|[ \t]*$")  # a Markdown table row

log = logging.getLogger(__name__)


def looks_tabular(text: str) -> bool:
    """Does a page's text layer have at least MIN_NUMERIC_LINES lines carrying two or more figures?"""
    return sum(len(_NUMBER.findall(line)) >= 2 for line in text.splitlines()) >= MIN_NUMERIC_LINES


def is_figure(cell: str) -> bool:
    """A cell that is a number, amount, percentage or a dash standing for zero."""
    return bool(_FIGURE.match(cell.strip()))


def is_header(row: list[str]) -> bool:
    """A header row: no figures apart from years (column headers are often "2023  2022")."""
    cells = [c for c in row if c]
    return bool(cells) and not any(is_figure(c) and not _YEAR.match(c) for c in cells)


@dataclass(frozen=True)
class Line:
    cells: list[str]

    @property
    def figures(self) -> int:
        return sum(is_figure(c) for c in self.cells)

    @property
    def text(self) -> str:
        return " ".join(self.cells)


def page_lines(words: list[dict[str, Any]], *, tolerance: float = 3.0) -> list[Line]:
    """Words (pdfplumber's, with ``size``) as lines top to bottom, each cut into cells at wide gaps;
    a lone currency sign joins the figure after it."""
    rows: list[tuple[float, list[dict[str, Any]]]] = []
    for w in sorted(words, key=lambda w: ((w["top"] + w["bottom"]) / 2, w["x0"])):
        mid = (w["top"] + w["bottom"]) / 2
        if rows and abs(rows[-1][0] - mid) <= tolerance:
            rows[-1][1].append(w)
        else:
            rows.append((mid, [w]))
    out = []
    for _, ws in rows:
        ws.sort(key=lambda w: w["x0"])
        cells = [[ws[0]["text"]]]
        for a, b in zip(ws, ws[1:]):
            if b["x0"] - a["x1"] > CELL_GAP_EM * float(a.get("size") or 10):
                cells.append([b["text"]])
            else:
                cells[-1].append(b["text"])
        merged: list[str] = []
        for cell in (re.sub(r"^([$€£])\s+(?=[\d(])", r"\1", " ".join(c)) for c in cells):
            if merged and merged[-1] in _CURRENCY:
                merged[-1] += cell
            else:
                merged.append(cell)
        out.append(Line(merged))
    return out


def table_runs(lines: list[Line]) -> list[tuple[int, int]]:
    """(first, last + 1) line indexes of each table: runs of lines with two or more figure cells,
    allowing up to MAX_GAP_LINES other lines between them, with at least MIN_TABLE_ROWS such lines."""
    runs, start, last, count = [], -1, -1, 0
    for i, line in enumerate(lines):
        if line.figures >= 2:
            if count and i - last - 1 > MAX_GAP_LINES:
                if count >= MIN_TABLE_ROWS:
                    runs.append((start, last + 1))
                count = 0
            if not count:
                start = i
            count, last = count + 1, i
    if count >= MIN_TABLE_ROWS:
        runs.append((start, last + 1))
    return runs


def table_rows(lines: list[Line]) -> list[list[str]]:
    """A table's lines as rows of equal width: the label (the cells before the figures) first, the
    figure cells right-aligned to the last columns; a label-only line followed by a line whose label
    goes on in lower case is one wrapped label."""
    rows: list[list[str]] = []
    pending = ""
    for line in lines:
        cells = line.cells
        k = len(cells)
        while k and is_figure(cells[k - 1]):
            k -= 1
        label, figures = " ".join(cells[:k]), cells[k:]
        if pending and (not label or label[:1].islower()):
            label, pending = f"{pending} {label}".strip(), ""
        elif pending:
            rows.append([pending])
            pending = ""
        if not figures:
            pending = label
            continue
        rows.append([label, *figures])
    if pending:
        rows.append([pending])
    width = max(len(r) for r in rows)
    return [[r[0], *[""] * (width - len(r)), *r[1:]] for r in rows]


def markdown(rows: list[list[str]]) -> str:
    """``| a | b |`` lines; under a header row a ``| --- |`` line, and each figure after it carries its
    column's header (``| Net sales | 2019: $16,865.2 | 2018: $15,740.4 |``): a statement is longer than
    a chunk, and a row cut off from the header must still say which year its figures are."""
    header = rows[0] if len(rows) > 1 and is_header(rows[0]) else None

    def cell(j: int, value: str) -> str:
        named = header and j and header[j] and value and is_figure(value)
        return (f"{header[j]}: {value}" if named else value).replace("|", "/")

    lines = ["| " + " | ".join(cell(j, c) for j, c in enumerate(row)) + " |" for row in rows]
    if header:
        lines[0] = "| " + " | ".join(c.replace("|", "/") for c in header) + " |"
        lines.insert(1, "| " + " | ".join("---" for _ in header) + " |")
    return "\n".join(lines)


def markdown_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each Markdown table in ``text``: two or more consecutive ``| ... |`` lines."""
    spans, start, end, count, pos = [], -1, -1, 0, 0
    for line in text.splitlines(keepends=True):
        if _ROW.match(line.rstrip("\r\n")):
            if count == 0:
                start = pos
            count, end = count + 1, pos + len(line.rstrip("\r\n"))
        else:
            if count >= 2:
                spans.append((start, end))
            count = 0
        pos += len(line)
    if count >= 2:
        spans.append((start, end))
    return spans


def page_text(lines: list[Line], *, header: list[str] | None = None) -> tuple[str, list[str] | None]:
    """The page's text with its tables as Markdown, and the header row a table continued on the next
    page would repeat (None when the page does not end in a table). ``header``: the previous page's,
    given to a first table with no header of its own and no text above it but a page heading."""
    runs = table_runs(lines)
    if not runs:
        return "", None
    blocks, pos, carried = [], 0, None
    for n, (start, end) in enumerate(runs):
        above = [line.text for line in lines[pos:start]]
        rows = table_rows(lines[start:end])
        if n == 0 and header and len(header) == len(rows[0]) and not is_header(rows[0]) and len(above) <= 2:
            rows = [header, *rows]
            above.append("(table continued)")
        blocks += above
        blocks.append(markdown(rows))
        carried = rows[0] if is_header(rows[0]) else None
        pos = end
    tail = [line.text for line in lines[pos:]]
    blocks += tail
    ends_in_table = not tail or len(tail) <= 2 and all(len(t) < 40 for t in tail)  # a page number or footer
    return "\n".join(blocks), carried if ends_in_table else None


def with_tables(pdf: bytes, pages: list[str], *, skip: Collection[int] = ()) -> tuple[list[str], tuple[int, ...]]:
    """``pages`` with each tabular page's text rebuilt with its tables as Markdown. ``skip``: 1-based
    pages not to touch (OCR'd ones: no text layer to read). Returns (pages, 1-based pages whose tables
    were read). A page that cannot be read keeps its text; a file that cannot be opened keeps all."""
    candidates = [i for i, text in enumerate(pages) if i + 1 not in skip and looks_tabular(text)]
    if not candidates:
        return pages, ()
    try:
        import pdfplumber
    except ImportError:  # without the reader pages keep pypdf's text
        return pages, ()
    logging.getLogger("pdfminer").setLevel(logging.ERROR)
    out, done, header, previous = list(pages), [], None, -2
    try:
        with pdfplumber.open(io.BytesIO(pdf)) as document:
            for i in candidates:
                try:
                    page = document.pages[i]
                    words = page.extract_words(x_tolerance=1.5, y_tolerance=3, extra_attrs=["size"])
                    page.close()
                    text, carried = page_text(page_lines(words), header=header if previous == i - 1 else None)
                except Exception as exc:  # noqa: BLE001 - pdfminer raises many types on odd pages
                    log.warning("page %d: words not readable (%s): its text layer is kept", i + 1, exc)
                    header, previous = None, i
                    continue
                if text:
                    out[i] = text
                    done.append(i + 1)
                header, previous = carried, i
    except Exception as exc:  # noqa: BLE001 - a file pdfminer cannot open keeps pypdf's text
        log.warning("tables: the PDF could not be opened by pdfplumber (%s): text layer kept", exc)
        return pages, ()
    return out, tuple(done)
