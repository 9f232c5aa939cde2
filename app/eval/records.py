"""The common shape every evaluation set is read into, and the error a malformed file raises.

``app.eval.datasets`` re-exports all of these; import them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model.errors import LlocoError


@dataclass(frozen=True)
class EvalDocument:
    """One document questions are asked about: its text, or (FinanceBench) the PDF to ingest."""

    doc_id: str
    title: str
    text: str | None
    pdf_path: str | None


@dataclass(frozen=True)
class EvalQuestion:
    """One question and its gold answers.

    ``references`` holds every acceptable answer (empty for an unanswerable SQuAD 2.0 question).
    For multiple choice, ``choices[i]`` is the text of option ``chr(ord("A") + i)`` and
    ``answer_letter`` the correct letter; both are None otherwise.
    """

    qid: str
    doc_id: str
    question: str
    references: list[str]
    choices: list[str] | None = None
    answer_letter: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSet:
    """A dataset read from disk: its documents and the questions about them."""

    name: str
    documents: list[EvalDocument]
    questions: list[EvalQuestion]

    def document(self, doc_id: str) -> EvalDocument:
        """The document with this id (KeyError when absent)."""
        for doc in self.documents:
            if doc.doc_id == doc_id:
                return doc
        raise KeyError(doc_id)


class DatasetError(LlocoError, ValueError):
    """A dataset file that is missing or malformed.

    The message names the file, and where they apply the 1-based line number (JSONL files, JSON
    syntax errors), the item's location inside a JSON file and the missing or bad field.
    """

    def __init__(self, path: str | Path, problem: str, *, line: int | None = None,
                 location: str | None = None, field: str | None = None) -> None:
        self.path = str(path)
        self.line = line
        self.location = location
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if location:
            where += f", {location}"
        super().__init__(f"{where}: {problem}")
