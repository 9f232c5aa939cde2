"""Token-aware, sentence-aware chunking (llama-index's SentenceSplitter with the decoder's
tokenizer), keeping every chunk's exact character span and page range for citations. Markdown tables
(a PDF's, as :mod:`indexing.tables` writes them, or a Markdown file's) are chunked on their own, with
the lines just above them (heading, caption), split only between rows: no chunk holds part of a
table and prose after it."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

PAGE_SEPARATOR = "\n\n"


@dataclass(frozen=True)
class Chunk:
    ordinal: int
    text: str
    char_start: int  # span in the document text (pages joined by PAGE_SEPARATOR)
    char_end: int
    page_start: int  # 1-based, inclusive
    page_end: int
    token_ids: list[int]
    context: str = ""  # situates the chunk without being in its span (a continued table's caption): embedded with it

    @property
    def embed_text(self) -> str:
        """What the retrieval embedder reads: the chunk's context line(s), then its text."""
        return f"{self.context}\n{self.text}" if self.context else self.text


def join_pages(pages: list[str]) -> tuple[str, list[int]]:
    """The document text and the character offset where each page starts."""
    offsets, pos = [], 0
    for page in pages:
        offsets.append(pos)
        pos += len(page) + len(PAGE_SEPARATOR)
    return PAGE_SEPARATOR.join(pages), offsets


def page_of(offsets: list[int], char: int) -> int:
    """1-based page holding character ``char``."""
    return bisect.bisect_right(offsets, char)


MAX_RUN = 1000  # characters without whitespace: not prose (minified data, an encoded blob, a wall of digits)


def chunk_pages(pages: list[str], *, encode: Callable[[str], list[int]], chunk_tokens: int, overlap: int) -> list[Chunk]:
    """Split a document's pages into chunks of about ``chunk_tokens`` tokens.

    Prose goes through the sentence-aware splitter; a run of more than MAX_RUN characters without
    whitespace is cut into token-budget windows directly (the splitter falls back to splitting such
    a run character by character: ~10 s per 20,000 characters, ~20 minutes for a 10 MB file).
    """
    from llama_index.core.node_parser import SentenceSplitter

    text, offsets = join_pages(pages)
    splitter = SentenceSplitter(chunk_size=chunk_tokens, chunk_overlap=overlap, tokenizer=encode,
                                paragraph_separator=PAGE_SEPARATOR, include_metadata=False, include_prev_next_rel=False)
    chunks: list[Chunk] = []
    for start, end, kind in _blocks(text, encode):
        pieces = (_run_pieces(text[start:end], start, encode, chunk_tokens) if kind == "run"
                  else _table_pieces(text[start:end], start, encode, chunk_tokens) if kind == "table"
                  else _prose_pieces(text[start:end], start, splitter, encode, chunk_tokens))
        caption = _caption(text[start:end]) if kind == "table" else ""
        for sub_start, sub in pieces:
            ids = encode(sub)
            sub_end = sub_start + len(sub)
            if chunks and sub_start <= chunks[-1].char_start:
                # the previous node was cut to fit the budget and this one restarts at its tail:
                # keep whichever of the two covers more, so no two chunks share a start
                if sub_end <= chunks[-1].char_end:
                    continue
                chunks.pop()
            chunks.append(Chunk(ordinal=len(chunks), text=sub, char_start=sub_start, char_end=sub_end,
                                page_start=page_of(offsets, sub_start),
                                page_end=page_of(offsets, max(sub_start, sub_end - 1)), token_ids=ids,
                                context="" if caption and sub.startswith(caption) else caption))
    return chunks


CAPTION_LINES = 4  # lines above a table kept with it (heading, caption, column-group labels)
CAPTION_TOKENS = 64


def _blocks(text: str, encode: Callable[[str], list[int]]) -> list[tuple[int, int, Literal["prose", "run", "table"]]]:
    """(start, end, kind) spans covering ``text``: Markdown tables with their captions, prose, and runs
    of more than MAX_RUN non-whitespace characters."""
    from indexing.tables import markdown_spans

    out: list[tuple[int, int, Literal["prose", "run", "table"]]] = []
    pos = 0
    for start, end in markdown_spans(text):
        start = max(_caption_start(text, start, encode), pos)
        out += _prose_and_runs(text, pos, start)
        out.append((start, end, "table"))
        pos = end
    return out + _prose_and_runs(text, pos, len(text))


def _caption(block: str) -> str:
    """The caption lines a table block starts with ("" when it starts with its first row)."""
    body = 0 if block.startswith("|") else block.find("\n|") + 1
    return block[:body].strip()


def _caption_start(text: str, table_start: int, encode: Callable[[str], list[int]]) -> int:
    """Where a table's caption begins: up to CAPTION_LINES lines (CAPTION_TOKENS tokens) right above
    it, stopping at a blank line (a paragraph or page break), another table's row, or a line that ends a
    sentence (prose above the heading)."""
    start = table_start
    for _ in range(CAPTION_LINES):
        if start < 2 or text[start - 1] != "\n" or text[start - 2] == "\n":
            break
        line_start = text.rfind("\n", 0, start - 1) + 1
        line = text[line_start:start - 1]
        if (not line.strip() or line.lstrip().startswith("|") or re.search(r"[.!?][\"')\]]?\s*$", line)
                or len(encode(text[line_start:table_start])) > CAPTION_TOKENS):
            break  # a paragraph or page break, another table, the end of a prose sentence, or too long
        start = line_start
    return start


def _prose_and_runs(text: str, begin: int, end: int) -> list[tuple[int, int, Literal["prose", "run", "table"]]]:
    """(start, end, kind) spans covering text[begin:end]: prose, and runs of more than MAX_RUN
    non-whitespace characters."""
    if begin >= end:
        return []
    out: list[tuple[int, int, Literal["prose", "run", "table"]]] = []
    pos = begin
    for m in re.finditer(r"\S{%d,}" % (MAX_RUN + 1), text[begin:end]):
        s, e = begin + m.start(), begin + m.end()
        if s > pos:
            out.append((pos, s, "prose"))
        out.append((s, e, "run"))
        pos = e
    if pos < end:
        out.append((pos, end, "prose"))
    return out


def _table_pieces(block: str, offset: int, encode: Callable[[str], list[int]], limit: int) -> list[tuple[int, str]]:
    """A table (with its caption) in pieces of whole lines within ``limit`` tokens, split only between
    rows; a single row over the budget is cut at word boundaries."""
    out: list[tuple[int, str]] = []
    lines = [m for m in re.finditer(r"[^\n]*\n?", block) if m.group()]
    begin = end = None
    for m in lines:
        line_end = m.start() + len(m.group().rstrip("\n"))
        if begin is not None and len(encode(block[begin:line_end])) <= limit:
            end = line_end
            continue
        if begin is not None:
            out.append((offset + begin, block[begin:end]))
        begin, end = m.start(), line_end
        if len(encode(block[begin:end])) > limit:  # one row over the budget on its own
            out += _within_budget(block[begin:end], offset + begin, encode, limit)
            begin = end = None
    if begin is not None and block[begin:end].strip():
        out.append((offset + begin, block[begin:end]))
    return out


def _prose_pieces(block: str, offset: int, splitter, encode: Callable[[str], list[int]],
                  limit: int) -> list[tuple[int, str]]:
    """(start in the document, text) of the splitter's chunks of ``block``, each within ``limit`` tokens."""
    from llama_index.core import Document

    if not block.strip():
        return []
    out: list[tuple[int, str]] = []
    prev_start, prev_end = -1, 0
    for node in splitter.get_nodes_from_documents([Document(text=block)]):
        piece = node.get_content()
        if not piece.strip():
            continue
        start = _place(block, piece, prev_start, prev_end)
        prev_start, prev_end = start, start + len(piece)
        out += _within_budget(piece, offset + start, encode, limit)
    return out


def _run_pieces(run: str, offset: int, encode: Callable[[str], list[int]], limit: int) -> list[tuple[int, str]]:
    """A whitespace-free run cut into consecutive windows of at most ``limit`` tokens (no overlap)."""
    out, pos, width = [], 0, 4 * limit
    while pos < len(run):
        w = width
        while w > 1 and len(encode(run[pos:pos + w])) > limit:
            w //= 2
        out.append((offset + pos, run[pos:pos + w]))
        pos += w
    return out


def _place(text: str, piece: str, prev_start: int, prev_end: int) -> int:
    """Where ``piece`` stands in ``text``: after the previous chunk's start, and reaching past its end.

    The splitter's own ``start_char_idx`` takes the first later match, which puts repeated text
    (boilerplate, a sentence that recurs) inside the previous chunk and on the wrong page.
    """
    start = text.find(piece, prev_start + 1)
    while start >= 0 and start + len(piece) <= prev_end:
        start = text.find(piece, start + 1)
    if start < 0:
        raise RuntimeError(f"chunk text not found in its document after offset {prev_start}")
    return start


def _within_budget(piece: str, start: int, encode: Callable[[str], list[int]], limit: int) -> list[tuple[int, str]]:
    """Split ``piece`` at word boundaries where it encodes to more than ``limit`` tokens.

    The splitter counts tokens word by word; a long unpunctuated run can re-encode to a few more.
    """
    if len(encode(piece)) <= limit:
        return [(start, piece)]
    out, begin = [], 0
    bounds = [m.end() for m in re.finditer(r"\S+\s*", piece)]
    while begin < len(piece):
        end = begin
        for b in bounds:
            if b > begin and len(encode(piece[begin:b])) <= limit:
                end = b
            elif b > begin:
                break
        if end == begin:  # one word over the budget on its own: cut it by characters
            end = begin + max(1, len(piece[begin:]) * limit // max(len(encode(piece[begin:])), 1))
        sub = piece[begin:end].rstrip()
        if sub.strip():
            out.append((start + begin, sub))
        begin = end
    return out
