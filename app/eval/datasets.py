"""Readers that turn each evaluation file into one common shape, :class:`EvalSet`.

``read_dataset(name, path, limit=...)`` knows these layouts (see ../shared/eval-data/README.md):

- ``quality``: L-Eval JSONL, one article per line: ``input``, ``instructions[i]`` (question and
  options "(A) ... (D) ..."), ``outputs[i]`` ("(B) option text"). Choices and letter are parsed.
- ``qasper``: L-Eval JSONL with free-form ``outputs``. L-Eval packs several references by
  listing the same question several times, one answer each; they are merged into one question.
- ``narrativeqa``: JSONL with ``question``, ``passage`` and ``answer`` (a list, or a Python-list
  string). Identical passages are one document.
- ``hotpotqa``: a JSON list; either the official layout (``context`` = [[title, sentences]]) or
  the sample layout (``title_a``/``para_a``, ``title_b``/``para_b``, ``distractors``), whose gold
  and distractor paragraphs are shuffled with a seed taken from the item id. Each paragraph is
  "title\\nsentences"; paragraphs are separated by a blank line.
- ``qmsum``: JSONL (or one .json meeting): ``meeting_transcripts`` [{speaker, content}] become
  "speaker: content" lines; specific and general queries are both asked.
- ``squad``: SQuAD JSON; one document per article (its paragraphs joined by blank lines);
  unanswerable questions have ``references == []``. ``skip_paragraphs`` leaves out each article's
  first paragraphs and their questions (the shipped reader trained on the first 12).
- ``financebench``: JSONL; documents are PDFs at ``pdfs/<doc_name>.pdf`` beside the file
  (``text`` is None); evidence pages (zero-based, as FinanceBench gives them) go to metadata.
- ``needle``: a folder of .txt essays; see :mod:`app.eval.needle`.

``limit`` keeps the first ``limit`` questions in file order and only the documents they need;
reading stops as soon as enough questions are found. ``sample`` instead keeps a seeded random
``sample`` of every question (in file order), and the documents they need. A missing file, broken JSON, a missing field
or a wrong layout raises :class:`DatasetError` naming the file, the line (JSONL) or the item
(JSON) and the field.
"""

from __future__ import annotations

import ast
import hashlib
import random
import re
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, get_args

from app.eval.dataset_files import At, first_line_title, jsonl_objects, load_json, unique
from app.eval.needle import needle_grid, read_needle
from app.eval.records import DatasetError, EvalDocument, EvalQuestion, EvalSet

__all__ = ["DatasetName", "DatasetError", "EvalDocument", "EvalQuestion", "EvalSet",
           "DATASET_NAMES", "read_dataset", "needle_grid"]

DatasetName = Literal["quality", "qasper", "narrativeqa", "hotpotqa", "qmsum", "squad",
                      "financebench", "needle"]
DATASET_NAMES: tuple[str, ...] = get_args(DatasetName)
_Source = Iterator[tuple[EvalDocument, list[EvalQuestion]]]


def read_dataset(name: DatasetName, path: str | Path, *, limit: int | None = None,
                 skip_documents: int = 0, skip_paragraphs: int = 0, sample: int | None = None,
                 seed: int = 0) -> EvalSet:
    """Read the dataset ``name`` from ``path`` (a file; a folder of essays for ``needle``).

    ``skip_documents`` leaves out the file's first documents and their questions (say, the stories
    a reader adapter was trained on); ``limit`` then keeps the first questions of the rest, or
    ``sample`` a random ``sample`` of them (drawn with ``seed``; not with ``limit``).
    ``skip_paragraphs`` (SQuAD only) leaves out each article's first paragraphs and their questions.
    """
    for option, value in (("limit", limit), ("skip_documents", skip_documents), ("skip_paragraphs", skip_paragraphs),
                          ("sample", sample)):
        if value is not None and value < 0:
            raise ValueError(f"{option} must be >= 0, got {value}")
    if sample is not None and limit is not None:
        raise ValueError("give limit (the first questions) or sample (a random draw), not both")
    if skip_paragraphs and name != "squad":
        raise ValueError(f"skip_paragraphs applies to squad only, not {name}")
    path = Path(path)
    if name == "needle":
        if skip_documents or sample is not None:
            raise ValueError("needle builds its own contexts: it has no documents to skip or questions to sample")
        return read_needle(path, limit=limit)
    reader = _READERS.get(name)
    if reader is None:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASET_NAMES)}")
    if not path.exists():
        raise DatasetError(path, "file not found")
    if not path.is_file():
        raise DatasetError(path, "not a file")
    source = _read_squad(path, skip_paragraphs=skip_paragraphs) if name == "squad" else reader(path)
    evalset = _collect(name, source, limit, skip_documents)
    return evalset if sample is None else _sampled(evalset, sample, seed)


def _sampled(evalset: EvalSet, n: int, seed: int) -> EvalSet:
    """``n`` of the set's questions drawn with ``seed`` (all when it has fewer), in file order, and
    the documents they need."""
    rng = random.Random(seed)
    keep = sorted(rng.sample(range(len(evalset.questions)), min(n, len(evalset.questions))))
    questions = [evalset.questions[i] for i in keep]
    needed = {q.doc_id for q in questions}
    return EvalSet(evalset.name, [d for d in evalset.documents if d.doc_id in needed], questions)


def _collect(name: str, source: _Source, limit: int | None, skip_documents: int = 0) -> EvalSet:
    docs: dict[str, EvalDocument] = {}
    questions: list[EvalQuestion] = []
    skipped: set[str] = set()
    if limit == 0:
        return EvalSet(name, [], [])
    for doc, qs in source:
        if doc.doc_id in skipped or len(skipped) < skip_documents and doc.doc_id not in docs:
            skipped.add(doc.doc_id)
            continue
        if limit is not None:
            qs = qs[: limit - len(questions)]
        if not qs:
            continue
        docs.setdefault(doc.doc_id, doc)
        questions.extend(qs)
        if limit is not None and len(questions) >= limit:
            break
    return EvalSet(name, list(docs.values()), questions)


# ------------------------------------------------------------------------- L-Eval (quality, qasper)

_OPTION = re.compile(r"(?:^|\n)[ \t]*\(([A-Z])\)[ \t]*")
_ANSWER_LETTER = re.compile(r"\s*\(([A-Z])\)")


def _leval_lines(path: Path) -> Iterator[tuple[At, int, str, list[str], list[str]]]:
    for lineno, obj in jsonl_objects(path):
        at = At(path, line=lineno)
        text = at.get(obj, "input", str)
        instructions, outputs = at.strings(obj, "instructions"), at.strings(obj, "outputs")
        if len(instructions) != len(outputs):
            raise at.fail(f"'instructions' has {len(instructions)} entries but 'outputs' has "
                          f"{len(outputs)}", "outputs")
        yield at, lineno, text, instructions, outputs


def _split_options(instruction: str) -> tuple[str, list[str]] | None:
    marks = list(_OPTION.finditer(instruction))
    if len(marks) < 2 or [m.group(1) for m in marks] != list(string.ascii_uppercase[: len(marks)]):
        return None
    ends = [m.start() for m in marks[1:]] + [len(instruction)]
    return instruction[: marks[0].start()].strip(), [instruction[m.end():e].strip() for m, e in zip(marks, ends, strict=True)]


def _read_quality(path: Path) -> _Source:
    for at, lineno, text, instructions, outputs in _leval_lines(path):
        doc = EvalDocument(f"quality-{lineno}", first_line_title(text, f"QuALITY article {lineno}"), text, None)
        questions = []
        for i, (instruction, output) in enumerate(zip(instructions, outputs, strict=True)):
            parsed = _split_options(instruction)
            if parsed is None:
                raise at.fail("no options '(A) ... (B) ...' on their own lines", f"instructions[{i}]")
            stem, choices = parsed
            m = _ANSWER_LETTER.match(output)
            if not m or ord(m.group(1)) - ord("A") >= len(choices):
                raise at.fail(f"answer {output[:40]!r} does not start with one of the option letters "
                              f"(A)-({chr(64 + len(choices))})", f"outputs[{i}]")
            questions.append(EvalQuestion(
                qid=f"quality-{lineno}-{i}", doc_id=doc.doc_id, question=stem, references=[output.strip()],
                choices=choices, answer_letter=m.group(1),
                metadata={"line": lineno, "index": i, "instruction": instruction}))
        yield doc, questions


def _read_qasper(path: Path) -> _Source:
    for _at, lineno, text, instructions, outputs in _leval_lines(path):
        doc = EvalDocument(f"qasper-{lineno}", first_line_title(text, f"Qasper paper {lineno}"), text, None)
        grouped: dict[str, list[str]] = {}
        for instruction, output in zip(instructions, outputs, strict=True):
            grouped.setdefault(instruction.strip(), []).append(output)
        questions = [
            EvalQuestion(qid=f"qasper-{lineno}-{k}", doc_id=doc.doc_id, question=q, references=unique(refs),
                         metadata={"line": lineno, "n_listings": len(refs)})
            for k, (q, refs) in enumerate(grouped.items())]
        yield doc, questions


# ------------------------------------------------------------------------------ NarrativeQA

def _answers(value: str | list[Any], at: At) -> list[str]:
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise at.fail("field 'answer' is not a valid Python list string", "answer") from None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise at.fail("field 'answer' should be a list of strings", "answer")
    return unique(value)


def _read_narrativeqa(path: Path) -> _Source:
    numbers: dict[str, int] = {}
    for lineno, obj in jsonl_objects(path):
        at = At(path, line=lineno)
        question, passage = at.get(obj, "question", str), at.get(obj, "passage", str)
        refs = _answers(at.get(obj, "answer", (str, list)), at)
        digest = hashlib.sha1(passage.encode("utf-8")).hexdigest()[:12]
        number = numbers.setdefault(digest, len(numbers) + 1)
        doc = EvalDocument(f"narrativeqa-{digest}", f"NarrativeQA story {number}", passage, None)
        yield doc, [EvalQuestion(f"narrativeqa-{lineno}", doc.doc_id, question.strip(), refs,
                                 metadata={"line": lineno})]


# --------------------------------------------------------------------------------- HotpotQA

def _paragraph(entry: Any, at: At, label: str) -> tuple[str, str]:
    if (not isinstance(entry, list) or len(entry) < 2 or not isinstance(entry[0], str)
            or not isinstance(entry[1], list) or not all(isinstance(s, str) for s in entry[1])):
        raise at.fail(f"{label} should be [title, [sentences...]]", label)
    return entry[0], "".join(entry[1]).strip()


def _read_hotpotqa(path: Path) -> _Source:
    data = load_json(path)
    if not isinstance(data, list):
        raise DatasetError(path, f"expected a JSON list of questions, got {type(data).__name__}")
    for i, item in enumerate(data):
        at = At(path, location=f"item [{i}]")
        qid = str(at.get(item, "_id", (str, int)))
        question, answer = at.get(item, "question", str), at.get(item, "answer", str)
        meta: dict[str, Any] = {"index": i, "supporting_facts": item.get("supporting_facts")}
        if "context" in item:
            paragraphs = [_paragraph(p, at, f"context[{j}]") for j, p in enumerate(at.get(item, "context", list))]
            meta.update({k: item[k] for k in ("type", "level") if k in item})
        else:
            gold = [(at.get(item, f"title_{s}", str), "".join(at.strings(item, f"para_{s}")).strip()) for s in "ab"]
            distractors = [_paragraph(p, at, f"distractors[{j}]")
                           for j, p in enumerate(at.get(item, "distractors", list))]
            meta["gold_titles"] = [t for t, _ in gold]
            paragraphs = gold + distractors
            random.Random(f"hotpotqa:{qid}").shuffle(paragraphs)
        meta["paragraph_titles"] = [t for t, _ in paragraphs]
        text = "\n\n".join(f"{t}\n{body}" for t, body in paragraphs)
        doc = EvalDocument(f"hotpotqa-{qid}", f"HotpotQA {qid}", text, None)
        yield doc, [EvalQuestion(qid, doc.doc_id, question.strip(), [answer.strip()], metadata=meta)]


# ------------------------------------------------------------------------------------ QMSum

def _qmsum_objects(path: Path) -> Iterator[tuple[At, str, dict[str, Any]]]:
    if path.suffix == ".json":
        obj = load_json(path)
        yield At(path), path.stem, obj
        return
    for lineno, obj in jsonl_objects(path):
        yield At(path, line=lineno), str(lineno), obj


def _read_qmsum(path: Path) -> _Source:
    for at, key, obj in _qmsum_objects(path):
        lines = []
        for j, turn in enumerate(at.get(obj, "meeting_transcripts", list)):
            speaker = at.get(turn, "speaker", str, label=f"meeting_transcripts[{j}].speaker")
            content = at.get(turn, "content", str, label=f"meeting_transcripts[{j}].content")
            lines.append(f"{speaker}: {content}")
        doc = EvalDocument(f"qmsum-{key}", f"QMSum meeting {key}", "\n".join(lines), None)
        if "specific_query_list" not in obj and "general_query_list" not in obj:
            raise at.fail("missing field 'specific_query_list' (and 'general_query_list')", "specific_query_list")
        questions = []
        for kind in ("specific", "general"):
            for j, q in enumerate(obj.get(f"{kind}_query_list") or []):
                label = f"{kind}_query_list[{j}]"
                query = at.get(q, "query", str, label=f"{label}.query")
                answer = at.get(q, "answer", str, label=f"{label}.answer")
                meta = {"query_type": kind, "relevant_text_span": q.get("relevant_text_span")}
                questions.append(EvalQuestion(f"qmsum-{key}-{kind[0]}{j}", doc.doc_id, query.strip(),
                                              [answer.strip()], metadata=meta))
        yield doc, questions


# ------------------------------------------------------------------------------------ SQuAD

def _read_squad(path: Path, *, skip_paragraphs: int = 0) -> _Source:
    top = load_json(path)
    articles = At(path).get(top, "data", list)
    for i, article in enumerate(articles):
        at = At(path, location=f"data[{i}]")
        title = at.get(article, "title", str)
        # a document of fewer paragraphs is another document: its own id, never mistaken for the whole article
        doc_id = f"squad-{i}" if not skip_paragraphs else f"squad-{i}-from-p{skip_paragraphs}"
        doc = EvalDocument(doc_id, title.replace("_", " "), "", None)
        contexts, questions = [], []
        for j, para in enumerate(at.get(article, "paragraphs", list)):
            if j < skip_paragraphs:
                continue
            pat = At(path, location=f"data[{i}].paragraphs[{j}]")
            contexts.append(pat.get(para, "context", str).strip())
            for k, qa in enumerate(pat.get(para, "qas", list)):
                qat = At(path, location=f"data[{i}].paragraphs[{j}].qas[{k}]")
                question = qat.get(qa, "question", str)
                impossible = bool(qa.get("is_impossible", False))
                answers = qat.get(qa, "answers", list) if not impossible or "answers" in qa else []
                texts = [qat.get(a, "text", str, label=f"answers[{n}].text") for n, a in enumerate(answers)]
                if not impossible and not unique(texts):
                    raise qat.fail("answerable question with no answers", "answers")
                meta: dict[str, Any] = {"paragraph": j, "is_impossible": impossible}
                if impossible and isinstance(qa.get("plausible_answers"), list):
                    meta["plausible_answers"] = unique(
                        [a["text"] for a in qa["plausible_answers"] if isinstance(a, dict) and isinstance(a.get("text"), str)])
                questions.append(EvalQuestion(str(qat.get(qa, "id", (str, int))), doc.doc_id, question.strip(),
                                              [] if impossible else unique(texts), metadata=meta))
        if not contexts:
            continue
        yield EvalDocument(doc.doc_id, doc.title, "\n\n".join(contexts), None), questions


# ----------------------------------------------------------------------------- FinanceBench

def _read_financebench(path: Path) -> _Source:
    pdf_dir = path.parent / "pdfs"
    for lineno, obj in jsonl_objects(path):
        at = At(path, line=lineno)
        doc_name = at.get(obj, "doc_name", str).strip()
        if not doc_name or "/" in doc_name or "\\" in doc_name or doc_name.startswith("."):
            raise at.fail(f"bad document name {doc_name!r}", "doc_name")
        pdf = pdf_dir / f"{doc_name}.pdf"
        doc = EvalDocument(f"financebench-{doc_name}", doc_name, None, str(pdf))
        evidence = []
        for j, ev in enumerate(obj.get("evidence") or []):
            page = at.get(ev, "evidence_page_num", int, label=f"evidence[{j}].evidence_page_num")
            evidence.append({"doc_name": ev.get("doc_name", doc_name), "page": page,
                             "text": ev.get("evidence_text", "")})
        meta = {"line": lineno, "company": obj.get("company"), "question_type": obj.get("question_type"),
                "question_reasoning": obj.get("question_reasoning"), "justification": obj.get("justification"),
                "evidence_pages": sorted({e["page"] for e in evidence}), "evidence": evidence,
                "pdf_exists": pdf.is_file()}
        qid = str(obj.get("financebench_id") or f"financebench-{lineno}")
        yield doc, [EvalQuestion(qid, doc.doc_id, at.get(obj, "question", str).strip(),
                                 [at.get(obj, "answer", str).strip()], metadata=meta)]


_READERS: dict[str, Callable[[Path], _Source]] = {
    "quality": _read_quality, "qasper": _read_qasper, "narrativeqa": _read_narrativeqa,
    "hotpotqa": _read_hotpotqa, "qmsum": _read_qmsum, "squad": _read_squad,
    "financebench": _read_financebench,
}
