"""Numbers in answers and references (FinanceBench's metric): parsing "$2.5bn", "(3.2)", "14.3
percent", and matching a predicted figure to the reference's, in the filing's stated units too."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from app.eval.metrics import blank as _blank
from app.eval.metrics import normalize_answer

__all__ = ["ParsedNumber", "numeric_match", "numeric_match_by", "parse_numbers", "stated_scales"]


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
    out: list[ParsedNumber] = []
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
        out.append(ParsedNumber(value, pct, bool(scale), bool(scale or pct or cur), year,
                                parens and not (m.group("sign") or m.group("sign2"))))
    return out


def _main_number(numbers: list[ParsedNumber]) -> ParsedNumber:
    for n in numbers:
        if n.marked:
            return n
    for n in numbers:
        if not n.year_like:
            return n
    return numbers[0]


_DECREASE = re.compile(r"\b(decreas\w*|declin\w*|drop\w*|fell|fall\w*|lower\w*|loss\w*|negative|"
                       r"down|reduc\w*|shrank|shrunk)\b", re.IGNORECASE)


def _candidates(p: ParsedNumber, ref: ParsedNumber, decrease: bool) -> list[float]:
    values = [p.value]
    if p.parenthesized:
        values.append(-p.value)
    if p.percent != ref.percent:
        values += [v * 100 if ref.percent else v / 100 for v in values]
    if p.scaled != ref.scaled and not p.year_like:
        values += [v * 10.0 ** e for v in values for e in (-12, -9, -6, -3, 3, 6, 9, 12)]
    if ref.value < 0 and decrease:
        values += [-v for v in values if v > 0]
    return values


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


# FinanceBench writes its reference figures in millions ("$5466.00" for $5.466 billion).
_REFERENCE_UNIT = 1e6


def numeric_match(prediction: str, reference: str, rel_tol: float = 0.01, *,
                  stated: tuple[float, ...] = ()) -> float:
    """1.0 when some number in the prediction is within ``rel_tol`` of the reference's main number.

    The main number is the reference's first number written with a currency sign, percent or
    scale, else its first number that is not a bare year, else its first number. Also accepted:
    percent vs fraction (12.5% == 0.125) and percent vs bare number (12.5% == 12.5); an implicit
    scale (steps of 1,000) when only one side writes one ("$11,588" in millions == "$11.588
    billion"), never applied to a bare year; "(3.2)" read as 3.2 too; a positive number for a negative reference when the
    prediction speaks of a decrease ("declined 3.7%" for "-3.7"). ``stated``: the scales the
    filing states (``stated_scales``): a bare predicted number may be in the filing's units and the
    reference in those or in millions ("5,466,312" in thousands == "$5466.00" in millions). A
    reference without numbers, or with only bare years that no predicted number matches, falls
    back to normalised equality or containment of the reference in the prediction.
    """
    return numeric_match_by(prediction, reference, rel_tol, stated=stated)[0]


def numeric_match_by(prediction: str, reference: str, rel_tol: float = 0.01, *,
                     stated: tuple[float, ...] = ()) -> tuple[float, str]:
    """``numeric_match`` and how it matched: "number", "stated scale" (only through a scale the
    filing states), "text" (the non-numeric fallback) or "" (no match)."""
    if _blank(prediction):
        return 0.0, ""
    ref_numbers = parse_numbers(reference)
    if ref_numbers:
        ref = _main_number(ref_numbers)
        decrease = bool(_DECREASE.search(prediction))
        predicted = parse_numbers(prediction)

        def close(values: list[float]) -> bool:
            return any(math.isclose(v, ref.value, rel_tol=rel_tol, abs_tol=1e-9) for v in values)

        candidates = [(p, _candidates(p, ref, decrease)) for p in predicted]
        if any(close(values) for _, values in candidates):
            return 1.0, "number"
        if stated and not ref.percent:  # a percent is in no filing's units
            factors = {s / u for s in stated for u in {*stated, 1.0, _REFERENCE_UNIT}} - {1.0}
            for p, values in candidates:
                # a figure that writes its own scale, a percent or a year is not in the filing's units
                if not (p.scaled or p.percent or p.year_like) and close([v * f for v in values for f in factors]):
                    return 1.0, "stated scale"
        if not all(n.year_like for n in ref_numbers):
            return 0.0, ""
    gold, pred = normalize_answer(reference), normalize_answer(prediction)
    return (1.0, "text") if gold and (pred == gold or gold in pred) else (0.0, "")
