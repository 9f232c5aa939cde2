"""Citations: the document, the exact page and the sentences of a retrieved chunk that bear on
the question (a query-aware snippet), so a reader can check an answer at a glance."""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexing.chunking import page_of

SNIPPET_CHARS = 280
_SENTENCE = re.compile(r"[^.!?\s][^.!?\n]*(?:[.!?]+|\n|$)")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or that the this to was "
    "were what when where which who whom whose why will with".split()
)


@dataclass(frozen=True)
class Citation:
    document: str
    document_id: int
    page: int  # 1-based page where the snippet starts
    page_end: int  # page where it ends
    snippet: str
    score: float  # retrieval score of the chunk
    chunk_id: int
    char_start: int  # the snippet's span in the document text
    char_end: int
    ocr: bool = False  # the snippet's page was read by OCR (a scan): its text may hold OCR errors


def content_words(text: str) -> set[str]:
    """Content words, cut to 5 letters so that 'engineer' meets 'engineering'."""
    return {w[:5] for w in _WORD.findall(text.lower()) if w not in _STOP}


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-blank sentence of ``text``, in order (a line break ends one too)."""
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group().strip()]


def rarity_scores(sentences: list[str], question: str) -> list[float]:
    """Each sentence's score: the question's content words it holds, each weighted 1/(the number of
    the sentences that hold it), so a rare 'Eddystone' outweighs a 'lighthouse' every sentence has."""
    wanted = content_words(question)
    bags = [content_words(s) & wanted for s in sentences]
    df = {w: sum(w in bag for bag in bags) for w in wanted}
    return [sum(1.0 / df[w] for w in bag) for bag in bags]


def best_span(text: str, question: str, *, limit: int = SNIPPET_CHARS) -> tuple[int, int]:
    """(start, end) in ``text`` of the run of sentences that best matches the question.

    Sentences are scored by :func:`rarity_scores` among the chunk's sentences.
    """
    sentences = sentence_spans(text)
    if not sentences:
        return 0, min(len(text), limit)
    scores = rarity_scores([text[s:e] for s, e in sentences], question)
    first = max(range(len(sentences)), key=lambda i: (scores[i], -i))
    start, end = sentences[first]
    for _, e in sentences[first + 1:]:
        if e - start > limit:
            break
        end = e
    # a single sentence over the limit is cut at a word boundary
    if end - start > limit:
        cut = text.rfind(" ", start, start + limit)
        end = cut if cut > start else start + limit
    return start, end


def make_citation(*, document: str, document_id: int, chunk_id: int, chunk_text: str, chunk_start: int,
                  page_offsets: list[int], score: float, question: str, ocr_pages: set[int] | None = None) -> Citation:
    start, end = best_span(chunk_text, question)
    snippet = " ".join(chunk_text[start:end].split())
    absolute = chunk_start + start
    page = page_of(page_offsets, absolute)
    return Citation(document, document_id, page, page_of(page_offsets, max(absolute, chunk_start + end - 1)),
                    snippet, round(score, 4), chunk_id, absolute, chunk_start + end, ocr=page in (ocr_pages or ()))
