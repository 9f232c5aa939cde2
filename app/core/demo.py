"""The bundled demo's data (data/demo): its files, its collection's name and its questions with their
answers and pages — what `lloco demo`, `make run` and the empty chat's sample questions read."""

from __future__ import annotations

import json
from pathlib import Path

from indexing.loaders import SUPPORTED_SUFFIXES

DEMO_DIR = Path(__file__).resolve().parents[2] / "data" / "demo"
DEMO_COLLECTION = "demo"


def demo_questions() -> list[dict]:
    """The demo QA pairs: question, answer, document, page (none when the data is not there)."""
    path = DEMO_DIR / "questions.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def demo_files() -> list[Path]:
    """The demo collection's documents: every file of ``data/demo`` ingestion reads (its questions file is not one)."""
    return sorted(p for p in DEMO_DIR.iterdir() if p.suffix in SUPPORTED_SUFFIXES)


def sample_questions(collection: str, *, n: int = 3) -> list[str]:
    """A few questions to start an empty chat with: one per demo document, for the demo collection;
    none for the others (their documents are the analyst's own)."""
    if collection != DEMO_COLLECTION:
        return []
    picked, seen = [], set()
    for qa in demo_questions():
        if qa["document"] not in seen:
            seen.add(qa["document"])
            picked.append(qa["question"])
    return picked[:n]
