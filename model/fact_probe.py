"""Fact probe: how many of a chunk's numbers and names its summary vectors keep.

A chunk's *facts* are its numbers ("1,234.5", "14.3%", "1759") and named entities (runs of
capitalised words, less a word that only opens a sentence: "John Smeaton", "PepsiCo"). These are
what lloco answers need and what a compressor that keeps only a chunk's topic loses.

The probe reads the teacher-forced reconstruction of A that ``eval_compressor`` already scores
([S ; " Repeat:" ; A]): a fact is *reproduced* when the decoder's argmax is right at every one of its
tokens. Teacher forcing lets the decoder guess some facts from A's own prefix (a name said twice), so
the same share is measured without S; the difference is what the summary vectors carry.
"""

from __future__ import annotations

import re

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")
_CAPITALISED = re.compile(r"[A-Z][A-Za-z]*[a-z][A-Za-z]*|[A-Z]{2,}")  # "Smeaton", "PepsiCo", "NASA"; not "I"
_RUN_GAP = re.compile(r"[ \t]+")  # words of one name are separated by spaces only


def fact_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every number and named entity in ``text``, in order."""
    spans = [m.span() for m in _NUMBER.finditer(text)]
    words = [m.span() for m in _CAPITALISED.finditer(text) if _whole_word(text, *m.span())]
    run: list[tuple[int, int]] = []
    for span in [*words, (-1, -1)]:  # the sentinel flushes the last run
        if run and span[0] >= 0 and _RUN_GAP.fullmatch(text[run[-1][1]:span[0]]):
            run.append(span)
            continue
        if run:
            if _opens_sentence(text, run[0][0]):
                run = run[1:]  # "The", "When": capitalised because they open a sentence
            if run:
                spans.append((run[0][0], run[-1][1]))
        run = [span]
    return sorted(spans)


def _whole_word(text: str, start: int, end: int) -> bool:
    return (start == 0 or not text[start - 1].isalnum()) and (end == len(text) or not text[end].isalnum())


def _opens_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'(\u201c")
    return not before or before[-1] in ".!?:\n"


def token_char_spans(tokenizer, ids: list[int]) -> list[tuple[int, int]]:
    """(start, end) of each token's text in ``tokenizer.decode(ids)``."""
    spans, previous = [], 0
    for i in range(len(ids)):
        end = len(tokenizer.decode(ids[: i + 1]))
        spans.append((previous, end))
        previous = end
    return spans


def fact_tokens(tokenizer, ids: list[int]) -> list[list[int]]:
    """Per fact in the text of ``ids``, the positions of the tokens that hold it (decoded once per
    text: the same positions serve every condition the text is reconstructed under)."""
    tokens = token_char_spans(tokenizer, ids)
    return [[i for i, (a, b) in enumerate(tokens) if a < end and b > start]
            for start, end in fact_spans(tokenizer.decode(ids))]


def count_reproduced(facts: list[list[int]], correct: list[bool]) -> int:
    """How many of ``facts`` (token positions, from :func:`fact_tokens`) are right at every token."""
    return sum(bool(positions) and all(correct[i] for i in positions) for positions in facts)


def facts_reproduced(tokenizer, ids: list[int], correct: list[bool]) -> tuple[int, int]:
    """(facts reproduced, facts) in the text of ``ids`` given each token's argmax-correct flag."""
    if len(ids) != len(correct):
        raise ValueError(f"{len(correct)} flags for {len(ids)} tokens")
    facts = fact_tokens(tokenizer, ids)
    return count_reproduced(facts, correct), len(facts)


def fact_weights(tokenizer, ids: list[int], *, boost: float) -> list[float]:
    """A training weight per token of ``ids``: 1 + ``boost`` for tokens that hold a number or a named
    entity, 1 elsewhere (the fact-weighted reconstruction objective of the compressor)."""
    weights = [1.0] * len(ids)
    if boost:
        for positions in fact_tokens(tokenizer, ids):
            for i in positions:
                weights[i] = 1.0 + boost
    return weights
