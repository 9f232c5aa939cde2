"""Numbers as text writes them: "$2.5bn", "(3.2)" (negative), "14.3 percent", "1,234", "12 million" —
parsed to values, and the scales a filing states ("in millions"). Used by answer verification
(:mod:`app.core.verify`: a claimed figure must occur in the sources) and by FinanceBench's metric
(:mod:`app.eval.numbers`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["ParsedNumber", "numbers_with_spans", "parse_numbers", "stated_scales"]


@dataclass(frozen=True)
class ParsedNumber:
    """One number found in a text: its value (scale and sign applied) and how it was written."""

    value: float
    percent: bool = False
    scaled: bool = False  # written with a scale word or suffix (million, bn, k, ...)
    marked: bool = False  # carries a currency sign, a percent or a scale
    year_like: bool = False  # a bare integer 1900..2100
    parenthesized: bool = False  # negative only because it was written "(1,234)"


_SCALES = {"thousand": 1e3, "k": 1e3, "million": 1e6, "mn": 1e6, "m": 1e6,
           "billion": 1e9, "bn": 1e9, "b": 1e9, "trillion": 1e12, "tn": 1e12}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<open>\(\s*)?(?P<sign>[-\u2212\u2013]\s*)?(?P<cur>(?:US)?[$\u20ac\u00a3]\s*)?"
    r"(?P<sign2>[-\u2212])?"
    r"(?<![\w.])(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?!\d)"
    r"(?P<pct>\s*(?:%|percent\b|per\s+cent\b))?"
    r"(?P<scale>\s*(?:trillion|billion|million|thousand)\b|(?:bn|mn|tn|[bmk])(?![A-Za-z]))?"
    r"(?P<close>\s*\))?",
    re.IGNORECASE,
)


def parse_numbers(text: str) -> list[ParsedNumber]:
    """Every number in ``text``, e.g. "1,234.5", "$2.5bn", "(3.2)" (negative), "-3.7%",
    "12 million". Digits glued to letters ("FY2022", "Q2") are not numbers."""
    return [n for n, _, _ in numbers_with_spans(text)]


def numbers_with_spans(text: str) -> list[tuple[ParsedNumber, int, int]]:
    """:func:`parse_numbers` with where each number is written in ``text`` (start, end)."""
    out: list[tuple[ParsedNumber, int, int]] = []
    for m in _NUMBER.finditer(text or ""):
        raw = m.group("num").replace(",", "")
        value = float(raw)
        scale = (m.group("scale") or "").strip().lower()
        if scale:
            value *= _SCALES[scale]
        parens = bool(m.group("open") and m.group("close"))
        if m.group("sign") or m.group("sign2") or parens:
            value = -value
        pct, cur = bool(m.group("pct")), bool(m.group("cur"))
        year = raw.isdigit() and len(raw) == 4 and 1900 <= int(raw) <= 2100 and not (scale or pct or cur)
        out.append((ParsedNumber(value, pct, bool(scale), bool(scale or pct or cur), year,
                                 parens and not (m.group("sign") or m.group("sign2"))), m.start(), m.end()))
    return out


_STATED_SCALE = re.compile(r"\b(?:in|amounts\s+in|expressed\s+in)\s+(?:u\.?s\.?\s+)?(?:dollars\s+in\s+)?"
                           r"(thousands|millions|billions)\b", re.IGNORECASE)
_SCALE_WORDS = {"thousands": 1e3, "millions": 1e6, "billions": 1e9}


def stated_scales(text: str) -> tuple[float, ...]:
    """The scales a filing states for its figures ("(In millions, except per share data)",
    "in thousands"), as factors in the order first stated, each once."""
    out: list[float] = []
    for m in _STATED_SCALE.finditer(text or ""):
        factor = _SCALE_WORDS[m.group(1).lower()]
        if factor not in out:
            out.append(factor)
    return tuple(out)
