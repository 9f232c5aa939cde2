"""What each evaluation set asks of the model: its prompt instruction, the question text, its metrics.

``prompt_question`` and ``INSTRUCTIONS`` shape the prompt every mode builds (through
``LlocoService.ask(..., instruction=...)``); ``score_prediction`` turns an answer into the
dataset's metrics (all of them, by name); ``METRICS`` lists them for reports, ``PRIMARY`` names
the headline one.
"""

from __future__ import annotations

import string

from app.eval import metrics as m
from app.core.numbers import stated_scales
from app.eval import numbers
from app.eval.records import EvalQuestion

INSTRUCTIONS: dict[str, str] = {
    "quality": ("Read the context below and answer the multiple-choice question. "
                "Answer with the letter of the correct option only (A, B, C or D)."),
    "qasper": ("Answer the question about the paper using only the context below. Answer as concisely as "
               "you can, in a phrase or one short sentence. Answer 'yes' or 'no' for a yes/no question, and "
               "'unanswerable' if the context does not contain the answer."),
    "narrativeqa": "Answer the question about the story using only the context below, with a single short phrase.",
    "hotpotqa": ("Answer the question using only the context below. Answer concisely, in a few words; "
                 "answer 'yes' or 'no' for a yes/no question."),
    "qmsum": "Using only the meeting transcript below, write a short summary that answers the query.",
    "squad": ("Answer the question using only the context below, with the shortest span of text from it "
              "that answers it. If the context does not contain the answer, answer 'unanswerable'."),
    "financebench": ("Answer the question using only the filing excerpts below. Give the number with its unit "
                     "(for example $1,234 million or 12.5%) and nothing else."),
    "needle": "Answer the question using only the context below. Reply with the requested value only.",
}
# Option log-likelihood (QuALITY): the stem alone, asked plainly; each option's text is the continuation.
LL_INSTRUCTION = "Answer the question using only the context below."

# "recall": the answer is held in the prediction (see metrics.answer_recall), beside every free-form F1
METRICS: dict[str, list[str]] = {
    "quality": ["accuracy", "option_ll_accuracy", "option_ll_norm_accuracy"],
    "qasper": ["f1", "recall"],
    "narrativeqa": ["f1", "recall"],
    "hotpotqa": ["f1", "recall", "evidence_recall", "evidence_all"],  # evidence: retrieval (app.eval.evidence)
    "qmsum": ["rouge1", "rouge2", "rougeL", "rouge_gm"],
    "squad": ["em", "f1", "recall"],
    "financebench": ["numeric_match", "recall", "evidence_recall", "stated_scale_match"],
    "needle": ["match"],
}
PRIMARY: dict[str, str] = {"quality": "accuracy", "qasper": "f1", "narrativeqa": "f1", "hotpotqa": "f1",
                           "qmsum": "rouge_gm", "squad": "f1", "financebench": "numeric_match", "needle": "match"}


def letters(n: int) -> str:
    """The first ``n`` option letters: "ABCD" for four choices."""
    return string.ascii_uppercase[:n]


def prompt_question(dataset: str, question: EvalQuestion) -> str:
    """The question as the prompt states it: multiple choice lists its lettered options."""
    if not question.choices:
        return question.question
    options = "\n".join(f"({letter}) {choice}" for letter, choice in zip(letters(len(question.choices)),
                                                                         question.choices, strict=True))
    return f"{question.question}\n{options}"


def score_prediction(dataset: str, question: EvalQuestion, prediction: str) -> dict[str, float]:
    """Every metric of ``dataset`` for one prediction (option log-likelihood is added by the runner)."""
    refs = question.references
    match dataset:
        case "quality":
            return {"accuracy": m.choice_accuracy(prediction, refs[0]) if refs else 0.0}
        case "qasper":
            return {"f1": m.qasper_f1(prediction, refs), "recall": m.answer_recall(prediction, refs)}
        case "narrativeqa":
            return {"f1": m.token_f1(prediction, refs), "recall": m.answer_recall(prediction, refs)}
        case "hotpotqa":
            return {"f1": m.hotpot_f1(prediction, refs), "recall": m.answer_recall(prediction, refs)}
        case "qmsum":
            scores = m.rouge_max(prediction, refs)
            return {**scores, "rouge_gm": m.rouge_geometric_mean(scores)}
        case "squad":
            em, f1 = m.squad_v2_scores(prediction, refs)
            return {"em": em, "f1": f1, "recall": m.answer_recall(prediction, refs or ["unanswerable"])}
        case "financebench":
            stated = stated_scales(" ".join(e.get("text", "") for e in question.metadata.get("evidence", [])))
            matches = [numbers.numeric_match_by(prediction, r, stated=stated) for r in refs]
            numeric = max((score for score, _ in matches), default=0.0)
            hows = {how for _, how in matches}
            by_scale = float("stated scale" in hows and "number" not in hows)  # matched only in the filing's units
            return {"numeric_match": numeric, "recall": max(numeric, m.answer_recall(prediction, refs)),
                    "stated_scale_match": by_scale}
        case "needle":
            return {"match": m.needle_match(prediction, refs[0]) if refs else 0.0}
    raise ValueError(f"no metrics for dataset {dataset!r}")


def option_scores(question: EvalQuestion, logprobs: list[float]) -> tuple[dict[str, float], dict[str, object]]:
    """Option log-likelihood accuracy from each option's summed continuation log-prob.

    ``option_ll_accuracy`` takes the argmax of the sums; ``option_ll_norm_accuracy`` divides each
    sum by the option's length in characters first (lm-eval's ``acc_norm``), which removes the
    plain sum's preference for short options. Returns (scores, details).
    """
    choices = question.choices or []
    if len(logprobs) != len(choices) or not choices:
        raise ValueError(f"{len(logprobs)} log-probs for {len(choices)} options")
    marks = letters(len(choices))
    best = marks[max(range(len(choices)), key=lambda i: logprobs[i])]
    norm = [lp / max(len(c), 1) for lp, c in zip(logprobs, choices, strict=True)]
    best_norm = marks[max(range(len(choices)), key=lambda i: norm[i])]
    scores = {"option_ll_accuracy": float(best == question.answer_letter),
              "option_ll_norm_accuracy": float(best_norm == question.answer_letter)}
    details = {"option_logprobs": dict(zip(marks, logprobs, strict=True)), "option_ll_choice": best,
               "option_ll_norm_choice": best_norm}
    return scores, details
