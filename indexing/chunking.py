"""Token-aware, sentence-aware chunking (llama-index's SentenceSplitter with the decoder's
tokenizer), keeping every chunk's exact character span and page range for citations."""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from dataclasses import dataclass

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


def chunk_pages(pages: list[str], *, encode: Callable[[str], list[int]], chunk_tokens: int, overlap: int) -> list[Chunk]:
    """Split a document's pages into chunks of about ``chunk_tokens`` tokens."""
    from llama_index.core import Document
    from llama_index.core.node_parser import SentenceSplitter

    text, offsets = join_pages(pages)
    splitter = SentenceSplitter(chunk_size=chunk_tokens, chunk_overlap=overlap, tokenizer=encode,
                                paragraph_separator=PAGE_SEPARATOR, include_metadata=False, include_prev_next_rel=False)
    nodes = splitter.get_nodes_from_documents([Document(text=text)])
    chunks: list[Chunk] = []
    prev_start, prev_end = -1, 0
    for node in nodes:
        piece = node.get_content()
        if not piece.strip():
            continue
        start = _place(text, piece, prev_start, prev_end)
        prev_start, prev_end = start, start + len(piece)
        for sub_start, sub in _within_budget(piece, start, encode, chunk_tokens):
            ids = encode(sub)
            end = sub_start + len(sub)
            if chunks and sub_start <= chunks[-1].char_start:
                # the previous node was cut to fit the budget and this one restarts at its tail:
                # keep whichever of the two covers more, so no two chunks share a start
                if end <= chunks[-1].char_end:
                    continue
                chunks.pop()
            chunks.append(Chunk(ordinal=len(chunks), text=sub, char_start=sub_start, char_end=end,
                                page_start=page_of(offsets, sub_start), page_end=page_of(offsets, max(sub_start, end - 1)),
                                token_ids=ids))
    return chunks


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
