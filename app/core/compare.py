"""LLoCO against plain RAG (and full context) on one question: the cost ratios between answers.

Both answers come from the same retrieval and the same decoder (see :mod:`app.core.answerers`), so the
ratios measure what stands for the chunks in the prompt: summary vectors or text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.answerers import Answer

COSTS = {"prompt_tokens": "prompt tokens", "context_tokens": "context tokens", "ttft_s": "time to first token",
         "total_s": "total time"}


def cost_ratios(answer: Answer, baseline: Answer) -> dict[str, float | None]:
    """``answer``'s prompt tokens, context tokens, time to first token and total time over ``baseline``'s
    (0.1 = ten times less); None where either is missing or the baseline's is zero."""
    out: dict[str, float | None] = {}
    for key in COSTS:
        a, b = getattr(answer, key), getattr(baseline, key)
        out[key] = a / b if a is not None and b else None
    return out


def describe_ratio(ratio: float | None) -> str:
    """'0.03 (32x less)', '1.50 (1.5x more)' or '-'."""
    if ratio is None:
        return "-"
    if ratio < 1:
        return f"{ratio:.2f} ({1 / ratio:.1f}x less)" if ratio > 0 else "0.00"
    return f"{ratio:.2f} ({ratio:.1f}x more)" if ratio > 1 else "1.00 (the same)"
