"""A second look when lloco is unsure (issue 23): lloco's answer is verified; when it is not marked
supported and its confidence is below the collection's doubt threshold, the question is answered
again — from a larger expansion budget, from the same chunks' text (plain RAG), or as a quote (every
token continues a span of those chunks) — and whichever answer has the higher confidence is kept.
The first answer streams; a kept second one replaces it (:class:`Restart`), and the answer reports
both (:class:`SecondLook`).

This is the adaptive form of REFRAG's selective expansion: lloco's cost on the questions it can
answer, the text's on the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from app.core.verify import Verification


SECOND_LOOK_NOTE = "\n[second look: the answer above was not confirmed by the sources; this one replaces it]\n"


class Restart(str):
    """An empty piece of a stream: the text so far is replaced by the pieces that follow (a kept
    second look). A consumer that does not know it appends nothing."""

    def __new__(cls) -> Restart:
        return super().__new__(cls, "")


@dataclass(frozen=True)
class SecondLook:
    """What a second look did: both answers, their confidences, which was kept, the second's costs."""

    kind: str  # the on_doubt setting: expand, rag or quote
    first_text: str
    first_confidence: float | None
    text: str
    confidence: float | None
    kept: Literal["first", "second"]
    generated_tokens: int
    prompt_tokens: int
    seconds: float  # the second answer's own time (retrieval, prompt, generation, check)
    replaced_at_s: float | None = None  # from the start of the question to the kept second answer shown


def in_doubt(v: Verification | None, doubt: float | None = None) -> bool:
    """Whether an answer calls for a second look: it is not marked supported and, where the collection
    was calibrated with one (``Thresholds.doubt``), its confidence is below the doubt threshold — the
    answers above it were right as often as plain RAG's, so asking again would only cost time."""
    if v is None:
        return True
    if v.level == "supported":
        return False
    return doubt is None or v.confidence is None or v.confidence < doubt


def keeps_second(first: Verification | None, second: Verification | None) -> bool:
    """The second answer is kept when its confidence is higher (a declined one never replaces)."""
    if second is None or second.confidence is None or second.level == "declined":
        return False
    return first is None or first.confidence is None or second.confidence > first.confidence


class QuoteSpans:
    """Copy-constrained decoding: the tokens that continue the answer so far as a span of the sources'
    token ids (any of their tokens to start). Called once per generated token with the ids so far; the
    positions matching the answer are narrowed incrementally, so a step costs O(matches)."""

    def __init__(self, sources: Sequence[Sequence[int]]) -> None:
        self._sources = [list(ids) for ids in sources if ids]
        self._starts = {t for ids in self._sources for t in ids}
        self._matches: list[tuple[int, int]] = []  # (source, position of the span's next token)
        self._length = 0

    def __call__(self, generated: Sequence[int]) -> set[int]:
        n = len(generated)
        if n == 0:
            self._matches, self._length = [], 0
            return set(self._starts)
        if n != self._length + 1:  # not the next step of the same answer: match from scratch
            self._matches = [(s, i + n) for s, ids in enumerate(self._sources) for i in range(len(ids) - n + 1)
                             if ids[i:i + n] == list(generated)]
        elif n == 1:
            self._matches = [(s, i + 1) for s, ids in enumerate(self._sources) for i, t in enumerate(ids)
                             if t == generated[0]]
        else:
            last = generated[-1]
            self._matches = [(s, p + 1) for s, p in self._matches if self._sources[s][p] == last]
        self._length = n
        self._matches = [(s, p) for s, p in self._matches if p < len(self._sources[s])]
        return {self._sources[s][p] for s, p in self._matches}
