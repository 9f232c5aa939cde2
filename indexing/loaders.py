"""Read PDF, text and Markdown files into pages of text, refusing bad files with a precise reason."""

from __future__ import annotations

import hashlib
import unicodedata
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
    ocr_pages: tuple[int, ...] = ()  # 1-based pages whose text is OCR's (no usable text layer)
    skipped_pages: tuple[int, ...] = ()  # 1-based pages with no usable text layer and no OCR engine to read them
    table_pages: tuple[int, ...] = ()  # 1-based pages whose tables were read as Markdown

    @property
    def filename(self) -> str:
        return clean_filename(self.path.name)


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MB blocks (a document's identity, a backup's checksum)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def load_document(path: Path, *, max_bytes: int, tables: bool = True) -> LoadedDocument:
    """Load one file; raise :class:`DocumentError` for anything that cannot be read as a document.
    ``tables``: a PDF's tabular pages are read again with their tables as Markdown (:mod:`indexing.tables`)."""
    path = Path(path)
    if not path.is_file():
        if path.is_symlink() and not path.exists():
            raise DocumentError(f"{path}: a broken symbolic link (its target {path.readlink()} does not exist)")
        if path.exists() and not path.is_dir():
            raise DocumentError(f"{path}: not a regular file (a pipe, device or socket): only files can be ingested")
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
    ocr: tuple[int, ...] = ()
    skipped: tuple[int, ...] = ()
    table_pages: tuple[int, ...] = ()
    if suffix == ".pdf":
        from indexing.ocr import read_unreadable

        pages, ocr, skipped = read_unreadable(data, _pdf_pages(path, data))
        if tables:
            from indexing.tables import with_tables

            pages, table_pages = with_tables(data, pages, skip={*ocr, *skipped})
        pages = [strip_control(p) for p in pages]
    else:
        pages = [_text(path, data)]
    if not any(p.strip() for p in pages):
        if suffix != ".pdf":
            raise DocumentError(f"{path.name}: no text")
        from indexing.ocr import engine

        if skipped and engine() is None:
            raise DocumentError(f"{path.name}: no extractable text and no OCR engine to read its pages (a scanned PDF: "
                                "install Debian's tesseract-ocr, which `make setup` does as root)")
        if skipped:
            raise DocumentError(f"{path.name}: no extractable text, and OCR found nothing legible on its pages")
        raise DocumentError(f"{path.name}: no extractable text (its pages are blank)")
    return LoadedDocument(path=path, content_hash=content_hash(data), size_bytes=size, pages=pages,
                          ocr_pages=ocr, skipped_pages=skipped, table_pages=table_pages)


_BOMS = ((b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"),
         (b"\xfe\xff", "utf-16-be"), (b"\xef\xbb\xbf", "utf-8-sig"))
_CONTROL = {c: None for c in [*range(0, 9), 11, *range(14, 32), 127, *range(0x80, 0xA0)]}  # keep \t \n \f \r


def _text(path: Path, data: bytes) -> str:
    """The file's text: by its byte-order mark (UTF-8, -16, -32), else UTF-8, else Windows-1252 (the
    usual legacy encoding: its 0x80-0x9F are quotes and dashes, not control characters); control
    characters (NUL included, which PostgreSQL refuses) are dropped."""
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), None) or _bomless_utf16(data)
    if encoding is None and b"\x00" in data[:8192]:
        raise DocumentError(f"{path.name}: binary data, not a text file")
    try:
        text = data.decode(encoding or "utf-8")
    except UnicodeDecodeError:
        if encoding:
            raise DocumentError(f"{path.name}: not valid {encoding.upper()} text despite its byte-order mark") from None
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:  # the five bytes cp1252 leaves undefined
            text = data.decode("latin-1")
    return strip_control(text.lstrip("\ufeff"))


def strip_control(text: str) -> str:
    """``text`` without control characters (NUL, escape, C1 codes...), keeping tab, newline, form feed
    and carriage return: what no document or question needs and PostgreSQL refuses (NUL)."""
    return text.translate(_CONTROL)


def clean_filename(name: str) -> str:
    """A file's name as the catalog stores and shows it: without control or format characters (a
    newline, an escape, a right-to-left override), runs of whitespace as one space; '_' if nothing is left."""
    kept = "".join(" " if c.isspace() else c for c in name if unicodedata.category(c)[0] != "C" or c.isspace())
    return " ".join(kept.split()) or "_"


def _bomless_utf16(data: bytes) -> str | None:
    """'utf-16-le' / 'utf-16-be' for text that is UTF-16 without a byte-order mark (ASCII-range text
    puts a NUL in every other byte), else None."""
    head = data[:4096]
    if len(head) < 4:
        return None
    even, odd = head[0::2], head[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


def _pdf_pages(path: Path, data: bytes) -> list[str]:
    import io
    import logging

    from pypdf import PdfReader
    from pypdf.errors import LimitReachedError, PdfReadError, PyPdfError

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
        return [(page.extract_text() or "").replace("\x00", "") for page in reader.pages]
    except DocumentError:
        raise
    except LimitReachedError as exc:  # a decompression bomb: a small file whose streams inflate without end
        raise DocumentError(f"{path.name}: the PDF's content decompresses past the safety limit ({exc}); not ingested") from exc
    except (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError, OSError, RecursionError) as exc:
        raise DocumentError(f"{path.name}: corrupt or unreadable PDF ({type(exc).__name__}: {exc})") from exc


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files as given, folders expanded to every non-hidden file inside (recursively, sorted).

    Unsupported files in a folder are kept so that each gets its own clear error, and so are broken
    symbolic links, pipes and devices (never skipped silently).
    """
    out: list[Path] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if not p.is_dir()
                              and not any(part.startswith(".") for part in p.relative_to(path).parts)))
        else:
            out.append(path)
    return out
