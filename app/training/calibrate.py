"""A collection's answer thresholds, chosen offline on its own synthetic questions (issue 23).

Cloze questions are made from the collection's chunks (``app.training.data.cloze_questions``: a
sentence with a number or a name blanked — the same questions collection adapters train on), asked
in each mode as an analyst's question would be, and each answer is right when it holds the blanked
words (answer recall). Beside them, *foreign* cloze questions — made from text the collection does
not hold (the home's other collections, else the bundled demo documents) — are asked too and count
as wrong whatever is answered: the questions an analyst asks of the wrong collection, which should be
declined. :func:`app.core.confidence.choose_thresholds` then picks, per mode, the confidence that
declines and the one that marks an answer supported, for the targets the settings give
(``supported_precision``, ``decline_accuracy``); they are stored with the collection.
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
FOREIGN_SHARE = 0.5  # foreign questions per question of the collection's own
_FOREIGN_CHUNKS = 4000  # read at most this many of the other collections' chunks


@dataclass(frozen=True)
class ModeCalibration:
    """One mode's thresholds and how its confidence did on the synthetic questions."""

    mode: str
    thresholds: Thresholds
    answer_recall: float  # of the answers to the collection's own questions
    auroc: float | None  # of the confidence against answer recall (foreign questions count as wrong)


@dataclass(frozen=True)
class SyntheticAnswer:
    """One synthetic question answered in one mode: the verification's signals, the confidence the
    answerer gave it, and whether it held the blanked words."""

    mode: str
    signals: dict[str, float]
    confidence: float
    right: bool
    foreign: bool = False  # made from text the collection does not hold (right is then False)


def foreign_texts(service: LlocoService, name: str, rng: random.Random) -> list[str]:
    """Text collection ``name`` does not hold, to make questions it should decline from: the chunks of
    the home's other collections (documents it also holds left out), else the bundled demo documents'
    pages (none when ``name`` holds them). ``rng`` samples the chunks of a big home."""
    from sqlalchemy import select

    from app.core.demo import demo_files
    from indexing.catalog import Chunk, Document
    from indexing.loaders import load_document

    row = service.collection_row(name)
    with service.sessions() as session:
        mine = set(session.scalars(select(Document.content_hash).where(Document.collection_id == row.id)))
        ids = list(session.scalars(select(Chunk.id).join(Document, Chunk.document_id == Document.id)
                                   .where(Chunk.collection_id != row.id, Document.content_hash.not_in(mine))
                                   .order_by(Chunk.id)))
        picked = sorted(rng.sample(ids, _FOREIGN_CHUNKS)) if len(ids) > _FOREIGN_CHUNKS else ids  # every collection
        texts = [t for i in range(0, len(picked), 500)
                 for t in session.scalars(select(Chunk.text).where(Chunk.id.in_(picked[i:i + 500])).order_by(Chunk.id))]
    if texts:
        return texts
    out = []
    for path in demo_files():
        loaded = load_document(path, max_bytes=service.settings.max_file_bytes, tables=False)
        if loaded.content_hash not in mine:
            out += loaded.pages
    return out


def synthetic_answers(service: LlocoService, name: str, *, modes: tuple[Mode, ...] = CALIBRATION_MODES,
                      questions: int = CALIBRATION_QUESTIONS, seed: int = 0, foreign: float = FOREIGN_SHARE,
                      progress: Callable[[int, int], None] | None = None) -> list[SyntheticAnswer]:
    """Ask ``questions`` cloze questions made from collection ``name``'s chunks in each of ``modes``,
    and ``foreign`` times as many made from :func:`foreign_texts` (0: none)."""
    from sqlalchemy import select

    from indexing.catalog import Chunk

    if not 10 <= questions <= 2000:
        raise InvalidInputError(f"--questions must be between 10 and 2000, got {questions}")
    row = service.collection_row(name)
    with service.sessions() as session:
        texts = list(session.scalars(select(Chunk.text).where(Chunk.collection_id == row.id).order_by(Chunk.id)))
    rng = random.Random(seed)
    made = [(q, blank, False) for q, blank, _ in cloze_questions(texts, questions, rng)]
    if len(made) < 10:
        raise InvalidInputError(f"collection {name!r} gives {len(made)} synthetic questions (10 needed): ingest more text")
    if foreign > 0:
        made += [(q, blank, True) for q, blank, _ in
                 cloze_questions(foreign_texts(service, name, rng), round(foreign * len(made)), rng)]
    out: list[SyntheticAnswer] = []
    for mode in modes:
        for question, blank, elsewhere in made:
            answer = service.ask(name, question, mode=mode).read()
            v = answer.verification
            out.append(SyntheticAnswer(mode, dict(v.signals) if v else {},
                                       v.confidence if v is not None and v.confidence is not None else 0.0,
                                       not elsewhere and answer_recall(answer.text, [blank]) > 0, elsewhere))
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
    foreign = FOREIGN_SHARE if any(t.foreign_declined is not None for t in stored.values()) else 0.0
    return calibrate_collection(service, name, modes=tuple(stored), questions=max(10, min(questions, 2000)),  # type: ignore[arg-type]
                                foreign=foreign)


def calibrate_collection(service: LlocoService, name: str, *, modes: tuple[Mode, ...] = CALIBRATION_MODES,
                         questions: int = CALIBRATION_QUESTIONS, seed: int = 0, foreign: float = FOREIGN_SHARE,
                         progress: Callable[[int, int], None] | None = None) -> list[ModeCalibration]:
    """Answer ``questions`` synthetic questions of collection ``name`` (and ``foreign`` times as many it
    should decline) in each of ``modes``, choose each mode's thresholds and store them with the
    collection (replacing those of the modes given)."""
    from app.core.confidence import thresholds_from_json

    if not 0 <= foreign <= 4:
        raise InvalidInputError(f"--foreign must be between 0 and 4 (foreign questions per own one), got {foreign}")
    answers = synthetic_answers(service, name, modes=modes, questions=questions, seed=seed, foreign=foreign,
                                progress=progress)
    s, results = service.settings, []
    recall = {m: sum(a.right for a in answers if a.mode == m and not a.foreign) /
              max(1, sum(a.mode == m and not a.foreign for a in answers)) for m in modes}
    for mode in modes:
        mine = [a for a in answers if a.mode == mode]
        confidences, labels = [a.confidence for a in mine], [a.right for a in mine]
        # below it a second look is worth it: RAG's recall on the same questions (read by the modes that
        # have one, lloco's; app.core.answering decides which)
        doubt = recall.get("rag") if mode != "rag" else None
        t = choose_thresholds(confidences, labels, supported_precision=s.supported_precision,
                              decline_accuracy=s.decline_accuracy, foreign=[a.foreign for a in mine],
                              doubt_accuracy=doubt)
        results.append(ModeCalibration(mode, t, recall[mode], auroc(confidences, labels)))
    stored = thresholds_from_json(service.collection_row(name).thresholds)
    stored.update({r.mode: r.thresholds for r in results})
    cq.set_thresholds(service.sessions, service.collection_row(name).id, thresholds_json(stored))
    return results
