"""Token-aware, sentence-aware chunking (llama-index's SentenceSplitter with the decoder's
tokenizer), keeping every chunk's exact character span and page range for citations."""

from __future__ import annotations

import bisect
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
    cursor = 0
    for node in nodes:
        piece = node.get_content()
        if not piece.strip():
            continue
        start = node.start_char_idx
        if start is None or text[start:start + len(piece)] != piece:
            # the splitter could not place the piece: find it ourselves, after the previous chunk's start
            start = text.find(piece, cursor)
            if start < 0:
                raise RuntimeError(f"chunk text not found in its document (chunk {len(chunks)})")
        end = start + len(piece)
        cursor = start + 1
        chunks.append(Chunk(ordinal=len(chunks), text=piece, char_start=start, char_end=end,
                            page_start=page_of(offsets, start), page_end=page_of(offsets, max(start, end - 1)),
                            token_ids=encode(piece)))
    return chunks
