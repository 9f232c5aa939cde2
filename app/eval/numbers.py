"""FinanceBench's metric: a predicted figure matched to the reference's, in the filing's stated units
too (the parsing of "$2.5bn", "(3.2)", "14.3 percent" is :mod:`app.core.numbers`)."""

from __future__ import annotations

import math
import re

from app.core.numbers import ParsedNumber, parse_numbers, stated_scales
from app.eval.metrics import blank as _blank
from app.eval.metrics import normalize_answer

__all__ = ["numeric_match", "numeric_match_by"]


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
