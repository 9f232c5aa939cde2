"""Read PDF, text and Markdown files into pages of text, refusing bad files with a precise reason."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from model.errors import LlocoError

SUPPORTED_SUFFIXES = (".pdf", ".txt", ".md", ".markdown")


class DocumentError(LlocoError):
    """A file that cannot be ingested; the message says why."""


@dataclass(frozen=True)
class LoadedDocument:
    """A file's text, page by page (text and Markdown files are one page)."""

    path: Path
    content_hash: str  # sha256 of the file's bytes: the document's identity
    size_bytes: int
    pages: list[str]

    @property
    def filename(self) -> str:
        return self.path.name


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_document(path: Path, *, max_bytes: int) -> LoadedDocument:
    """Load one file; raise :class:`DocumentError` for anything that cannot be read as a document."""
    path = Path(path)
    if not path.is_file():
        raise DocumentError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise DocumentError(f"{path.name}: unsupported file type {suffix or '(none)'}; supported: {', '.join(SUPPORTED_SUFFIXES)}")
    size = path.stat().st_size
    if size == 0:
        raise DocumentError(f"{path.name}: the file is empty")
    if size > max_bytes:
        raise DocumentError(f"{path.name}: {size / 2**20:.1f} MB is over the {max_bytes / 2**20:.0f} MB limit (LLOCO_MAX_FILE_MB)")
    data = path.read_bytes()
    pages = _pdf_pages(path, data) if suffix == ".pdf" else [_text(path, data)]
    if not any(p.strip() for p in pages):
        what = "no extractable text (a scanned PDF needs OCR first)" if suffix == ".pdf" else "no text"
        raise DocumentError(f"{path.name}: {what}")
    return LoadedDocument(path=path, content_hash=content_hash(data), size_bytes=size, pages=pages)


def _text(path: Path, data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentError(f"{path.name}: binary data, not a text file")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _pdf_pages(path: Path, data: bytes) -> list[str]:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data.lstrip()[:1024].startswith(b"%PDF") and b"%PDF-" not in data[:1024]:
        raise DocumentError(f"{path.name}: not a PDF (no %PDF header); is it another file type renamed to .pdf?")
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # its recoverable-warning chatter is not actionable
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            try:
                unlocked = reader.decrypt("")  # PDFs with an empty user password open without one
            except Exception as exc:
                raise DocumentError(f"{path.name}: encrypted PDF ({exc})") from exc
            if not unlocked:
                raise DocumentError(f"{path.name}: the PDF is encrypted with a password; remove the password and ingest it again")
        return [page.extract_text() or "" for page in reader.pages]
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
        raise DocumentError(f"{path.name}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from exc


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded to every non-hidden file inside (recursively, sorted).

    Unsupported files in a folder are kept so that each gets its own clear error.
    """
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        else:
            out.append(path)
    return out
