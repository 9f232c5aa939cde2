"""A collection's answer thresholds, chosen offline on its own synthetic questions (issue 23).

Cloze questions are made from the collection's chunks (``app.training.data.cloze_questions``: a
sentence with a number or a name blanked — the same questions collection adapters train on), asked
in each mode as an analyst's question would be, and each answer is right when it holds the blanked
words (answer recall). :func:`app.core.confidence.choose_thresholds` then picks, per mode, the
confidence that declines and the one that marks an answer supported, for the targets the settings
give (``supported_precision``, ``decline_accuracy``); they are stored with the collection.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.config import Mode
from app.core.confidence import Thresholds, auroc, choose_thresholds, thresholds_json
from app.eval.metrics import answer_recall
from app.training.data import cloze_questions
from indexing import catalog_queries as cq
from model.errors import InvalidInputError

if TYPE_CHECKING:
    from app.core.service import LlocoService

CALIBRATION_MODES: tuple[Mode, ...] = ("lloco", "rag")  # the modes an analyst is served by default
CALIBRATION_QUESTIONS = 40  # per mode: ~2 minutes per mode for SmolLM2-135M on two CPU cores


@dataclass(frozen=True)
class ModeCalibration:
    """One mode's thresholds and how its confidence did on the synthetic questions."""

    mode: str
    thresholds: Thresholds
    answer_recall: float  # of all the synthetic answers
    auroc: float | None  # of the confidence against answer recall


@dataclass(frozen=True)
class SyntheticAnswer:
    """One synthetic question answered in one mode: the verification's signals, the confidence the
    answerer gave it, and whether it held the blanked words."""

    mode: str
    signals: dict[str, float]
    confidence: float
    right: bool


def synthetic_answers(service: LlocoService, name: str, *, modes: tuple[Mode, ...] = CALIBRATION_MODES,
                      questions: int = CALIBRATION_QUESTIONS, seed: int = 0,
                      progress: Callable[[int, int], None] | None = None) -> list[SyntheticAnswer]:
    """Ask ``questions`` cloze questions made from collection ``name``'s chunks in each of ``modes``."""
    from sqlalchemy import select

    from indexing.catalog import Chunk

    if not 10 <= questions <= 2000:
        raise InvalidInputError(f"--questions must be between 10 and 2000, got {questions}")
    row = service.collection_row(name)
    with service.sessions() as session:
        texts = list(session.scalars(select(Chunk.text).where(Chunk.collection_id == row.id).order_by(Chunk.id)))
    made = cloze_questions(texts, questions, random.Random(seed))
    if len(made) < 10:
        raise InvalidInputError(f"collection {name!r} gives {len(made)} synthetic questions (10 needed): ingest more text")
    out: list[SyntheticAnswer] = []
    for mode in modes:
        for question, blank, _ in made:
            answer = service.ask(name, question, mode=mode).read()
            v = answer.verification
            out.append(SyntheticAnswer(mode, dict(v.signals) if v else {},
                                       v.confidence if v is not None and v.confidence is not None else 0.0,
                                       answer_recall(answer.text, [blank]) > 0))
            if progress is not None:
                progress(len(out), len(made) * len(modes))
    return out


def recalibrate(service: LlocoService, name: str) -> list[ModeCalibration]:
    """After a rebuild (new chunks, new vectors): choose again the thresholds of the modes the
    collection was calibrated for; [] when it never was."""
    from app.core.confidence import thresholds_from_json

    stored = thresholds_from_json(service.collection_row(name).thresholds)
    if not stored:
        return []
    questions = max(t.n for t in stored.values())
    return calibrate_collection(service, name, modes=tuple(stored), questions=max(10, min(questions, 2000)))  # type: ignore[arg-type]


def calibrate_collection(service: LlocoService, name: str, *, modes: tuple[Mode, ...] = CALIBRATION_MODES,
                         questions: int = CALIBRATION_QUESTIONS, seed: int = 0,
                         progress: Callable[[int, int], None] | None = None) -> list[ModeCalibration]:
    """Answer ``questions`` synthetic questions of collection ``name`` in each of ``modes``, choose
    each mode's thresholds and store them with the collection (replacing those of the modes given)."""
    from app.core.confidence import thresholds_from_json

    answers = synthetic_answers(service, name, modes=modes, questions=questions, seed=seed, progress=progress)
    s, results = service.settings, []
    for mode in modes:
        mine = [a for a in answers if a.mode == mode]
        confidences, labels = [a.confidence for a in mine], [a.right for a in mine]
        t = choose_thresholds(confidences, labels, supported_precision=s.supported_precision,
                              decline_accuracy=s.decline_accuracy)
        results.append(ModeCalibration(mode, t, sum(labels) / len(labels), auroc(confidences, labels)))
    stored = thresholds_from_json(service.collection_row(name).thresholds)
    stored.update({r.mode: r.thresholds for r in results})
    cq.set_thresholds(service.sessions, service.collection_row(name).id, thresholds_json(stored))
    return results
