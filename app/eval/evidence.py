"""Did retrieval find the gold evidence? (issue 13: retrieval evaluation)

- HotpotQA: the question's two gold (supporting) paragraphs; one counts as found when a retrieved
  chunk holds a 50-character stretch of its text (chunks cut paragraphs anywhere, so a stretch, not
  the whole). ``evidence_recall`` is the share found, ``all_found`` whether both were.
- FinanceBench: the evidence pages (0-based in the file); found when a retrieved chunk spans one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.eval.records import EvalDocument, EvalQuestion

WINDOW, STEP = 50, 25
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class RetrievedChunk:
    text: str
    page_start: int  # 1-based
    page_end: int


@dataclass(frozen=True)
class EvidenceResult:
    found: int
    total: int

    @property
    def recall(self) -> float:
        return self.found / self.total if self.total else 0.0

    @property
    def all_found(self) -> bool:
        return self.total > 0 and self.found == self.total


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip().lower()


def gold_paragraphs(question: EvalQuestion, document: EvalDocument) -> list[str]:
    """HotpotQA: the bodies of the question's gold paragraphs, from its document's text."""
    meta = question.metadata or {}
    titles = meta.get("gold_titles") or list(dict.fromkeys(t for t, _ in meta.get("supporting_facts") or []))
    blocks = {}
    for block in (document.text or "").split("\n\n"):
        title, _, body = block.partition("\n")
        blocks.setdefault(title.strip(), body)
    return [blocks[t] for t in titles if t in blocks]


def _holds(chunk: str, body: str) -> bool:
    body = _norm(body)
    if len(body) <= WINDOW:
        return body in chunk
    return any(body[i:i + WINDOW] in chunk for i in range(0, len(body) - WINDOW + 1, STEP))


def evidence(dataset: str, question: EvalQuestion, document: EvalDocument,
             retrieved: list[RetrievedChunk]) -> EvidenceResult | None:
    """What share of the question's gold evidence the retrieved chunks hold; None where the dataset
    gives no evidence."""
    if dataset == "hotpotqa":
        golds = gold_paragraphs(question, document)
        texts = [_norm(c.text) for c in retrieved]
        return EvidenceResult(sum(any(_holds(t, g) for t in texts) for g in golds), len(golds)) if golds else None
    if dataset == "financebench":
        pages = (question.metadata or {}).get("evidence_pages") or []
        if not pages:
            return None
        found = any(c.page_start <= p + 1 <= c.page_end for p in pages for c in retrieved)
        return EvidenceResult(int(found), 1)
    return None
