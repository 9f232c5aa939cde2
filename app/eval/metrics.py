"""Answer metrics for the evaluation sets, pure Python (no third-party packages).

Every metric returns a float in [0, 1] (``squad_v2_scores`` a pair, the ROUGE helpers a dict).
An empty or whitespace-only prediction always scores 0, except for an unanswerable SQuAD 2.0
question, where saying nothing is the right answer.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter

__all__ = [
    "answer_recall",
    "blank",
    "choice_accuracy",
    "exact_match",
    "extract_choice_letter",
    "hotpot_f1",
    "is_no_answer",
    "needle_match",
    "normalize_answer",
    "qasper_f1",
    "reference_letter",
    "rouge_geometric_mean",
    "rouge_max",
    "rouge_scores",
    "rouge_tokenize",
    "squad_v2_scores",
    "token_f1",
]

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(s: str) -> str:
    """SQuAD normalisation: lowercase, drop punctuation, drop articles (a/an/the), collapse spaces."""
    s = "".join(ch for ch in s.lower() if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())


def _f1_tokens(pred: list[str], ref: list[str]) -> float:
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(ref)
    return 2 * precision * recall / (precision + recall)


def blank(text: str | None) -> bool:
    """True for None, empty or whitespace-only text (a prediction that says nothing)."""
    return text is None or not text.strip()


def token_f1(prediction: str, references: list[str]) -> float:
    """Bag-of-tokens F1 on normalised text, the best over ``references`` (0 when there are none)."""
    if blank(prediction) or not references:
        return 0.0
    pred = normalize_answer(prediction).split()
    return max(_f1_tokens(pred, normalize_answer(r).split()) for r in references)


def exact_match(prediction: str, references: list[str]) -> float:
    """1.0 when the normalised prediction equals some normalised reference, else 0.0."""
    if blank(prediction) or not references:
        return 0.0
    pred = normalize_answer(prediction)
    return float(any(pred == normalize_answer(r) for r in references))


_HOTPOT_SPECIAL = {"yes", "no", "noanswer"}
# A full stop ends the answer, a decimal point ("3.5") does not.
_FIRST_STOP = re.compile(r"\.(?!\d)|(?<!\d)\.")


def hotpot_f1(prediction: str, references: list[str]) -> float:
    """HotpotQA F1 as LLoCO scores it: keep the prediction up to its first full stop, then the
    official HotpotQA token F1 (yes/no/noanswer must match exactly), best over ``references``.

    A '.' between two digits is a decimal point and does not cut the answer.
    """
    if blank(prediction) or not references:
        return 0.0
    m = _FIRST_STOP.search(prediction)
    pred = normalize_answer(prediction[: m.start()] if m else prediction)
    best = 0.0
    for ref in references:
        gold = normalize_answer(ref)
        if (pred in _HOTPOT_SPECIAL or gold in _HOTPOT_SPECIAL) and pred != gold:
            continue
        best = max(best, _f1_tokens(pred.split(), gold.split()) if pred and gold else 0.0)
    return best


# Normalised: "n/a" -> "na", "No answer." -> "no answer".
_NO_ANSWER_EXACT = {"unanswerable", "no answer", "na", "none", "cannot be answered", "not answerable"}
_NO_ANSWER_ANYWHERE = ("unanswerable", "cannot be answered", "not answerable", "no answer")


def is_no_answer(prediction: str) -> bool:
    """Whether a prediction declines to answer: empty, "n/a", "none", or one of the phrases
    "unanswerable", "no answer", "cannot be answered", "not answerable" anywhere in it
    (e.g. "This question cannot be answered from the passage.")."""
    text = normalize_answer(prediction or "")
    return not text or text in _NO_ANSWER_EXACT or any(
        re.search(rf"\b{p}\b", text) for p in _NO_ANSWER_ANYWHERE)


def squad_v2_scores(prediction: str, references: list[str]) -> tuple[float, float]:
    """SQuAD 2.0 ``(exact_match, f1)``.

    An empty ``references`` list means the question is unanswerable: both scores are 1.0 when the
    prediction is empty or a no-answer phrase (see :func:`is_no_answer`), else 0.0. For an
    answerable question a no-answer prediction scores 0 and otherwise the usual EM/F1 apply,
    best over the references.
    """
    refs = [r for r in references if normalize_answer(r)]
    if not refs:
        return (1.0, 1.0) if is_no_answer(prediction) else (0.0, 0.0)
    if blank(prediction) or is_no_answer(prediction):
        return 0.0, 0.0
    return exact_match(prediction, refs), token_f1(prediction, refs)


_QASPER_SPECIAL = {"yes", "no", "unanswerable"}


def qasper_f1(prediction: str, references: list[str]) -> float:
    """Qasper answer F1: token F1, best over ``references``.

    References that normalise to "yes", "no" or "unanswerable" are matched as labels: they score
    1.0 when the normalised prediction is that word or starts with it ("Yes, they do"), or, for
    "unanswerable", when the prediction is a no-answer phrase; otherwise 0.0.
    """
    if blank(prediction) or not references:
        return 0.0
    pred = normalize_answer(prediction)
    first = pred.split()[0] if pred else ""
    best = 0.0
    for ref in references:
        gold = normalize_answer(ref)
        if gold in _QASPER_SPECIAL:
            hit = first == gold or (gold == "unanswerable" and is_no_answer(prediction))
            score = float(hit)
        else:
            score = _f1_tokens(pred.split(), gold.split()) if pred and gold else 0.0
        best = max(best, score)
    return best


_LABELS = {"yes", "no"}


def answer_recall(prediction: str, references: list[str]) -> float:
    """1.0 when the prediction holds an answer: some normalised reference occurs in the normalised
    prediction as whole words ("the 1822 lens" holds "1822", "18220" does not).

    F1 punishes a right answer said at length; recall does not, so the two together tell a
    verbose right answer from a short wrong one. Label references are matched as labels: "yes"/"no"
    when the prediction starts with that word, "unanswerable" when it declines to answer
    (:func:`is_no_answer`). 0.0 for an empty prediction or no references.
    """
    if blank(prediction) or not references:
        return 0.0
    pred = normalize_answer(prediction)
    padded, first = f" {pred} ", pred.split()[0] if pred else ""
    for ref in references:
        gold = normalize_answer(ref)
        if not gold:
            continue
        if gold in _LABELS:
            hit = first == gold
        elif gold == "unanswerable":
            hit = is_no_answer(prediction)
        else:
            hit = f" {gold} " in padded
        if hit:
            return 1.0
    return 0.0


# ---------------------------------------------------------------------------------------- ROUGE

def rouge_tokenize(text: str) -> list[str]:
    """Tokens as the ``rouge-score`` package makes them (no stemming): lowercase, runs of a-z0-9."""
    return re.findall(r"[a-z0-9]+", (text or "").lower())


def _fmeasure(overlap: int, n_pred: int, n_ref: int) -> float:
    if overlap == 0 or n_pred == 0 or n_ref == 0:
        return 0.0
    p, r = overlap / n_pred, overlap / n_ref
    return 2 * p * r / (p + r)


def _ngrams(tokens: list[str], n: int) -> Counter[tuple[str, ...]]:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _lcs_length(a: list[str], b: list[str]) -> int:
    if len(a) < len(b):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def rouge_scores(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L (summary-free LCS over the whole text) F-measures."""
    pred, ref = rouge_tokenize(prediction), rouge_tokenize(reference)
    out: dict[str, float] = {}
    for n, key in ((1, "rouge1"), (2, "rouge2")):
        pg, rg = _ngrams(pred, n), _ngrams(ref, n)
        out[key] = _fmeasure(sum((pg & rg).values()), sum(pg.values()), sum(rg.values()))
    out["rougeL"] = _fmeasure(_lcs_length(pred, ref) if pred and ref else 0, len(pred), len(ref))
    return out


def rouge_geometric_mean(scores: dict[str, float]) -> float:
    """Geometric mean of rouge1, rouge2 and rougeL (LLoCO's single QMSum number)."""
    vals = [scores["rouge1"], scores["rouge2"], scores["rougeL"]]
    if min(vals) <= 0:
        return 0.0
    return math.prod(vals) ** (1 / 3)


def rouge_max(prediction: str, references: list[str]) -> dict[str, float]:
    """Each ROUGE F-measure maximised separately over ``references`` (all 0.0 when none)."""
    best = {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    for ref in references:
        for k, v in rouge_scores(prediction, ref).items():
            best[k] = max(best[k], v)
    return best


# ---------------------------------------------------------------------------- multiple choice

def extract_choice_letter(prediction: str, n_choices: int = 4) -> str | None:
    """The option letter a generated answer picks, upper case, or None when none is found.

    Tried in order: an explicit statement ("Answer: B", "the answer is (C)", "option d)"), the
    first parenthesised letter "(B)", a letter opening the reply ("B)", "b.", "C: ...", "D"),
    a capital B, C, D... opening the reply before a space ("B They were ..."), then a lone
    capital letter closed by ')', '.', ':' or the end of the text. A bare "A"/"a" followed by a
    word is read as the English article, never as option A.
    """
    if blank(prediction) or not 1 <= n_choices <= 26:
        return None
    text = prediction.replace("*", "").strip()
    up = string.ascii_uppercase[:n_choices]
    cls = f"[{up}{up.lower()}]"
    closed = r"(?=\s*$|[).:,;\]])"
    keyword = r"\b(?i:answer|option|choice)(?:\s+(?i:is))?\s*[:\-=]?\s*(?:(?i:option|choice)\s+)?"
    patterns = [
        rf"{keyword}(?:\(({cls})\)|({cls}){closed}|([{up}])(?![A-Za-z']))",
        rf"\(({cls})\)",
        rf"^\[?({cls}){closed}",
        rf"^([{up[1:]}])\s" if n_choices > 1 else None,
        rf"(?<![A-Za-z'])([{up}])(?=\s*$|[).:])",
    ]
    for pat in patterns:
        if pat and (m := re.search(pat, text)):
            return next(g for g in m.groups() if g).upper()
    return None


def reference_letter(reference: str) -> str | None:
    """The letter of a multiple-choice reference: "(B) option text", "B) text", "B" -> "B"."""
    m = re.match(r"\s*\(?([A-Za-z])(?:\)|\s*$|[.:]\s)", reference or "")
    return m.group(1).upper() if m else None


def choice_accuracy(prediction: str, reference: str) -> float:
    """1.0 when the prediction picks the reference's option.

    The letter comes from :func:`extract_choice_letter`; when the prediction names no letter but
    repeats the reference's option text (e.g. "They were Clinton-haters"), that counts too.
    """
    if blank(prediction):
        return 0.0
    gold = reference_letter(reference)
    if gold is None:
        return 0.0
    picked = extract_choice_letter(prediction, n_choices=max(4, ord(gold) - 64))
    if picked is not None:
        return float(picked == gold)
    option = normalize_answer(re.sub(r"^\s*\(?[A-Za-z]\)\s*", "", reference))
    if option and reference.strip() not in (gold, f"({gold})"):
        return float(option in normalize_answer(prediction))
    return 0.0


def needle_match(prediction: str, needle_answer: str) -> float:
    """1.0 when the normalised needle answer occurs in the normalised prediction."""
    if blank(prediction):
        return 0.0
    gold = normalize_answer(needle_answer or "")
    return float(bool(gold) and gold in normalize_answer(prediction))
