"""Tables in PDFs (issue 13, item 2): a tabular page's tables become Markdown rows with their column
header, chunked whole with their heading and caption and never with the prose after them; a table
split across pages keeps its header on the second page and each part cites its own page; a page
the reader cannot read keeps its text layer; the setting turns it off."""

from __future__ import annotations

import re

import pytest

from indexing import tables
from indexing.chunking import chunk_pages
from indexing.loaders import load_document

MB = 2**20
YEARS = ["2023", "2022", "2021"]
ROWS = [("Net revenue", "$91,471", "$86,392", "$79,474"), ("Cost of sales", "41,881", "40,576", "37,075"),
        ("Gross profit", "49,590", "45,816", "42,399"), ("Selling, general and administrative", "36,677", "34,459", "31,237"),
        ("Operating profit", "12,913", "11,512", "11,162"), ("Net income", "$9,074", "$8,910", "$7,618")]
PROSE = ("The company sells snacks and beverages in more than two hundred countries. Its results depend on "
         "commodity prices, currency rates and consumer demand, which the management discusses below. ")


def statement_pdf(path, rows, *, rows_on_first_page: int | None = None, prose_after: str = PROSE):
    """A real PDF with a heading, a caption, an unruled statement (label left, three right-aligned
    year columns) and prose after it; ``rows_on_first_page``: the statement breaks onto a second page
    there, without repeating its header (as many filings do)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    pdf.add_page()
    pdf.multi_cell(0, 5, PROSE * 2)
    pdf.ln(4)
    pdf.set_font("Helvetica", style="B", size=11)
    pdf.cell(0, 6, "Consolidated Statement of Income", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    pdf.cell(0, 6, "(in millions, except per share amounts)", new_x="LMARGIN", new_y="NEXT")

    def row(cells):
        pdf.cell(80, 6, cells[0])
        for value in cells[1:]:
            pdf.cell(35, 6, value, align="R")
        pdf.ln(6)

    row(["", *YEARS])
    for n, cells in enumerate(rows):
        if rows_on_first_page is not None and n == rows_on_first_page:
            pdf.add_page()
        row(list(cells))
    pdf.ln(4)
    pdf.multi_cell(0, 5, prose_after)
    pdf.output(str(path))
    return path


def _encode(text: str) -> list[int]:
    return list(range(len(text) // 4 + 1))  # ~4 characters a token: enough to exercise the budgets


def test_rows_from_word_positions():
    # words as pdfplumber gives them: a lone "$" joins its figure, wide gaps make cells, and a label
    # wrapped onto a second line is one label
    def w(text, x0, top, size=10.0):
        return {"text": text, "x0": x0, "x1": x0 + 5.5 * len(text), "top": top, "bottom": top + size, "size": size}

    words = [w("2023", 300, 10), w("2022", 400, 10),
             w("Net", 20, 30), w("sales", 42, 30), w("$", 290, 30), w("16,865.2", 300, 30), w("15,740.4", 400, 30),
             w("Earnings", 20, 50), w("before", 68, 50), w("income", 104, 50),
             w("taxes", 20, 70), w("2,082.0", 300, 70), w("(87.9)", 400, 70)]
    lines = tables.page_lines(words)
    assert [line.cells for line in lines] == [["2023", "2022"], ["Net sales", "$16,865.2", "15,740.4"],
                                              ["Earnings before income"], ["taxes", "2,082.0", "(87.9)"]]
    assert tables.table_runs(lines) == [(0, 4)]
    rows = tables.table_rows(lines)
    assert rows == [["", "2023", "2022"], ["Net sales", "$16,865.2", "15,740.4"],
                    ["Earnings before income taxes", "2,082.0", "(87.9)"]]
    assert tables.markdown(rows).splitlines()[:3] == ["|  | 2023 | 2022 |", "| --- | --- | --- |",
                                                      "| Net sales | 2023: $16,865.2 | 2022: 15,740.4 |"]
    assert tables.is_figure("(1,084)") and tables.is_figure("—") and tables.is_figure("23.1 %")
    assert not tables.is_figure("Net sales") and tables.is_header(["", "2023", "2022"])


def test_a_statement_becomes_a_markdown_table_chunked_with_its_caption(tmp_path):
    pdf = statement_pdf(tmp_path / "statement.pdf", ROWS)
    loaded = load_document(pdf, max_bytes=10 * MB)
    assert loaded.table_pages == (1,)
    text = loaded.pages[0]
    assert "|  | 2023 | 2022 | 2021 |" in text
    assert "| Net revenue | 2023: $91,471 | 2022: $86,392 | 2021: $79,474 |" in text
    assert "| Selling, general and administrative | 2023: 36,677 | 2022: 34,459 | 2021: 31,237 |" in text
    chunks = chunk_pages(loaded.pages, encode=_encode, chunk_tokens=256, overlap=32)
    [table] = [c for c in chunks if "| Net revenue |" in c.text]
    # the heading and caption are in the table's chunk; the prose after the table is not
    assert table.text.startswith("Consolidated Statement of Income\n(in millions, except per share amounts)\n|")
    assert table.text.rstrip().endswith("| Net income | 2023: $9,074 | 2022: $8,910 | 2021: $7,618 |")
    assert all("|" not in c.text for c in chunks if c is not table)
    assert all(c.text == "\n\n".join(loaded.pages)[c.char_start:c.char_end] for c in chunks)  # exact spans


def test_a_long_table_is_split_between_rows_only():
    rows = "\n".join(f"| Item {i} | {i * 11:,} | {i * 7:,} |" for i in range(60))
    page = f"Some prose before the table.\n\nSegment results\n|  | 2023 | 2022 |\n{rows}\nProse after the table."
    chunks = chunk_pages([page], encode=_encode, chunk_tokens=64, overlap=8)
    parts = [c for c in chunks if "| Item" in c.text]
    assert len(parts) > 3 and all(len(_encode(c.text)) <= 64 for c in parts)
    for c in parts:  # whole rows only, and only rows (the caption in the first part)
        body = c.text.removeprefix("Segment results\n")
        assert all(re.fullmatch(r"\|.*\|", line) for line in body.splitlines()), c.text
    assert parts[0].text.startswith("Segment results\n|  | 2023 | 2022 |")
    # the later parts are embedded with the table's caption, which their text (an exact span) lacks
    assert parts[0].context == "" and all(c.context == "Segment results" for c in parts[1:])
    assert parts[1].embed_text == "Segment results\n" + parts[1].text
    assert all(c.context == "" for c in chunks if c not in parts)
    assert sum(c.text.count("| Item") for c in parts) == 60
    assert not any("Prose after" in c.text for c in parts) and any("Prose after" in c.text for c in chunks)


def test_a_table_split_across_pages_keeps_its_header_and_pages(tmp_path):
    many = [(f"Line item {i}", f"{1000 + i:,}", f"{900 + i:,}", f"{800 + i:,}") for i in range(50)]
    pdf = statement_pdf(tmp_path / "split.pdf", many, rows_on_first_page=30)
    loaded = load_document(pdf, max_bytes=10 * MB)
    assert loaded.table_pages == (1, 2)
    first, second = loaded.pages
    assert "| Line item 29 | 2023: 1,029 | 2022: 929 | 2021: 829 |" in first and "Line item 30" not in first
    # the second part is a table of its own, headed by the first part's header row
    assert second.startswith("(table continued)\n|  | 2023 | 2022 | 2021 |\n| --- | --- | --- | --- |\n| Line item 30 | 2023: 1,030 |")
    chunks = chunk_pages(loaded.pages, encode=_encode, chunk_tokens=128, overlap=16)
    for i in range(50):
        [c] = [c for c in chunks if f"| Line item {i} |" in c.text]
        assert c.page_start == c.page_end == (1 if i < 30 else 2)  # each row cites its own page
    assert all("|" not in c.text for c in chunks if "snacks and beverages" in c.text)


def test_prose_pages_and_the_setting_off_keep_the_text_layer(tmp_path, pdf_factory):
    prose = pdf_factory("prose.pdf", ["In 2021 and 2022 the lighthouse stood 18 metres tall. " * 5])
    loaded = load_document(prose, max_bytes=10 * MB)
    assert loaded.table_pages == () and "|" not in loaded.pages[0]
    pdf = statement_pdf(tmp_path / "statement.pdf", ROWS)
    off = load_document(pdf, max_bytes=10 * MB, tables=False)
    assert off.table_pages == () and "| Net revenue |" not in off.pages[0] and "91,471" in off.pages[0]


def test_a_page_the_reader_cannot_read_keeps_its_text(tmp_path, monkeypatch):
    pdf = statement_pdf(tmp_path / "statement.pdf", ROWS)
    original = load_document(pdf, max_bytes=10 * MB, tables=False).pages

    def broken(*_a, **_k):
        raise ValueError("unreadable content stream")

    monkeypatch.setattr(tables, "page_lines", broken)
    loaded = load_document(pdf, max_bytes=10 * MB)
    assert loaded.table_pages == () and loaded.pages == original
    import pdfplumber

    monkeypatch.setattr(pdfplumber, "open", broken)
    assert load_document(pdf, max_bytes=10 * MB).pages == original


def test_a_markdown_file_table_is_kept_whole(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("# Results\n\nRevenue by region, in millions:\n| Region | 2023 | 2022 |\n| --- | --- | --- |\n"
                  "| Europe | 1,204 | 1,130 |\n| Asia | 988 | 870 |\nThe rest of the notes discuss hiring. " * 1)
    loaded = load_document(md, max_bytes=MB)
    chunks = chunk_pages(loaded.pages, encode=_encode, chunk_tokens=256, overlap=16)
    [table] = [c for c in chunks if "| Europe |" in c.text]
    assert table.text.startswith("Revenue by region, in millions:\n| Region |") and "hiring" not in table.text


@pytest.mark.parametrize("retrieval", ["bm25", "dense"])
def test_a_figure_question_finds_the_row_with_its_column_header(service, tmp_path, retrieval):
    service.settings.retrieval = retrieval
    service.settings.chunk_tokens, service.settings.chunk_overlap = 128, 16  # a row fits in a chunk
    service.create_collection("c")
    [result] = service.ingest("c", [statement_pdf(tmp_path / "statement.pdf", ROWS, prose_after=PROSE * 6)])
    assert result.status == "ingested" and result.table_pages == (1,)
    [(citation, text)] = service.retrieve("c", "What was the net revenue in 2023?", top_k=1)
    # the chunk found holds the row, each figure with the column header that says which year it is
    assert citation.page == 1 and "| Net revenue | 2023: $91,471 | 2022: $86,392 | 2021: $79,474 |" in text
    [cited] = service.ask("c", "What was the net revenue in 2023?", mode="rag", top_k=1).read().citations
    assert cited.page == 1 and cited.chunk_id == citation.chunk_id
