"""Needle-in-a-haystack grid in LLoCO's "special magic city number" style.

The haystack is the folder's .txt essays, read in sorted file-name order, joined by blank lines
and repeated if needed, cut to the cell's length (then back to the last sentence end). The needle
("The special magic {city} number is: {number}.") goes in at the cell's depth, moved back to the
nearest sentence boundary. Every cell is one document and one question; city and number are
drawn from a seeded generator, so the same arguments always give the same grid.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from app.eval.records import DatasetError, EvalDocument, EvalQuestion, EvalSet

__all__ = ["DEFAULT_CONTEXT_LENGTHS", "DEFAULT_DEPTHS", "NEEDLE", "QUESTION", "ANSWER",
           "load_essays", "build_haystack", "insert_needle", "needle_grid", "read_needle"]

DEFAULT_CONTEXT_LENGTHS: list[int] = [2000, 8000, 16000]
DEFAULT_DEPTHS: list[float] = [0.0, 0.5, 1.0]
NEEDLE = "The special magic {city} number is: {number}."
QUESTION = "What is the special magic {city} number?"
ANSWER = "{number}"
CITIES = ["Chicago", "Yangon", "Antananarivo", "Colombo", "Almaty", "Sydney", "Mexico City",
          "Seattle", "Lagos", "Amsterdam", "Belgrade", "Cairo", "Baghdad", "Damascus", "Kigali",
          "Dakar", "Sofia", "Victoria", "Tashkent", "Mumbai", "Barcelona", "Amman", "Toronto",
          "Bratislava", "Johannesburg", "Thimphu", "Bangkok", "Santiago", "San Francisco", "Paris",
          "Rabat", "Copenhagen", "Madrid", "Ho Chi Minh City", "Sarajevo", "Delhi", "Istanbul",
          "Jakarta", "Lisbon", "Lima", "Nairobi", "Oslo", "Warsaw", "Helsinki", "Hanoi"]

# The end of a sentence: . ! or ? (maybe closed by quotes or brackets), then whitespace.
_SENTENCE_END = re.compile(r"[.!?][\"'\u2019\u201d)\]]*\s+")


def load_essays(folder: str | Path) -> str:
    """The .txt files of ``folder`` in sorted name order, stripped and joined by blank lines."""
    folder = Path(folder)
    if not folder.exists():
        raise DatasetError(folder, "folder not found")
    if not folder.is_dir():
        raise DatasetError(folder, "not a folder of .txt essays")
    texts = []
    for f in sorted(folder.glob("*.txt")):
        try:
            texts.append(f.read_text(encoding="utf-8").strip())
        except UnicodeDecodeError as e:
            raise DatasetError(f, f"not UTF-8 text ({e.reason})") from None
        except OSError as e:
            raise DatasetError(f, f"cannot read ({e.strerror})") from None
    texts = [t for t in texts if t]
    if not texts:
        raise DatasetError(folder, "no non-empty .txt essays in folder")
    return "\n\n".join(texts)


def build_haystack(essays: str, length: int) -> str:
    """``essays`` repeated as needed and cut to at most ``length`` characters, then back to the
    last sentence end when one lies in the second half (so the text does not stop mid-word)."""
    if not essays:
        raise ValueError("empty essays text")
    text = essays
    while len(text) < length:
        text += "\n\n" + essays
    if len(text) > length:
        text = text[:length]
        ends = [m.end() for m in _SENTENCE_END.finditer(text)]
        if ends and ends[-1] > length // 2:
            text = text[: ends[-1]]
    return text.rstrip()


def insert_needle(haystack: str, needle: str, depth: float) -> tuple[str, int]:
    """``haystack`` with ``needle`` inserted at ``depth`` (0 = start, 1 = end), moved back to the
    nearest sentence boundary at or before that point; also returns the needle's offset."""
    if not 0.0 <= depth <= 1.0:
        raise ValueError(f"depth must lie in [0, 1], got {depth}")
    if depth >= 1.0:
        pos = len(haystack)
    else:
        target = int(len(haystack) * depth)
        pos = 0
        for m in _SENTENCE_END.finditer(haystack, 0, target):
            pos = m.end()
    left, right = haystack[:pos], haystack[pos:]
    if left and not left[-1].isspace():
        left += " "
    if right and not right[0].isspace():
        right = " " + right
    return left + needle + right, len(left)


def _depth_label(depth: float) -> str:
    return f"{round(depth * 100, 2):g}"


def needle_grid(path: str | Path, *, context_lengths_chars: list[int], depths: list[float],
                needle: str = NEEDLE, question: str = QUESTION, answer: str = ANSWER) -> EvalSet:
    """One document and one question per (length, depth) cell, lengths outermost.

    ``needle``, ``question`` and ``answer`` may use the placeholders ``{city}`` and ``{number}``
    (filled per cell from a generator seeded with the cell); the answer is what a prediction must
    contain. Metadata: context_chars (requested), haystack_chars (actual, before the needle),
    depth, needle_offset, needle, city, number.
    """
    if not context_lengths_chars or not depths:
        raise ValueError("need at least one context length and one depth")
    for n in context_lengths_chars:
        if not isinstance(n, int) or n <= 0:
            raise ValueError(f"context lengths must be positive integers, got {n!r}")
    for d in depths:
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"depths must lie in [0, 1], got {d!r}")
    essays = load_essays(path)
    documents, questions = [], []
    for length in context_lengths_chars:
        haystack = build_haystack(essays, length)
        for depth in depths:
            rng = random.Random(f"needle:{length}:{_depth_label(depth)}")
            fill = {"city": rng.choice(CITIES), "number": str(rng.randint(1_000_000, 9_999_999))}
            needle_text = needle.format(**fill)
            text, offset = insert_needle(haystack, needle_text, depth)
            doc_id = f"needle-{length}-{_depth_label(depth)}"
            documents.append(EvalDocument(doc_id, f"Needle {length} chars, depth {_depth_label(depth)}%",
                                          text, None))
            questions.append(EvalQuestion(
                f"{doc_id}-q", doc_id, question.format(**fill), [answer.format(**fill)],
                metadata={"context_chars": length, "haystack_chars": len(haystack), "depth": depth,
                          "needle_offset": offset, "needle": needle_text, **fill}))
    return EvalSet("needle", documents, questions)


def read_needle(path: str | Path, *, limit: int | None = None) -> EvalSet:
    """The default grid (DEFAULT_CONTEXT_LENGTHS x DEFAULT_DEPTHS), its first ``limit`` cells."""
    grid = needle_grid(path, context_lengths_chars=DEFAULT_CONTEXT_LENGTHS, depths=DEFAULT_DEPTHS)
    if limit is not None:
        grid.questions = grid.questions[:limit]
        grid.documents = grid.documents[:limit]
    return grid
