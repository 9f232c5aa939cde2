"""The original bytes of ingested PDFs, kept under ``<home>/originals`` keyed by content hash.

The catalog keeps a PDF's extracted text, not its pages' look; rendering a cited page (see
:mod:`app.core.page_images`) needs the file itself, and an uploaded file's path is gone once the
upload is ingested. Files are shared by every document with the same bytes (in any collection)
and removed when the last such document is deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

KEPT_SUFFIXES = (".pdf",)  # text documents are shown as their text; only PDFs have pages to draw


class OriginalStore:
    """Content-addressed files: ``<root>/<hash[:2]>/<hash><suffix>``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, content_hash: str, suffix: str = ".pdf") -> Path:
        return self.root / content_hash[:2] / f"{content_hash}{suffix.lower()}"

    def keep(self, source: Path, content_hash: str) -> Path | None:
        """Copy ``source`` in (atomically; a no-op if already kept); None for a type not kept."""
        suffix = Path(source).suffix.lower()
        if suffix not in KEPT_SUFFIXES:
            return None
        target = self.path_for(content_hash, suffix)
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out, Path(source).open("rb") as src:
                shutil.copyfileobj(src, out)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target

    def find(self, content_hash: str, *, fallback: Path | str | None = None) -> Path | None:
        """The kept file for ``content_hash``; else ``fallback`` (say the path a document was
        ingested from) if it still holds exactly those bytes; else None."""
        for suffix in KEPT_SUFFIXES:
            path = self.path_for(content_hash, suffix)
            if path.is_file():
                return path
        if fallback is not None and Path(fallback).is_file() and sha256_of(Path(fallback)) == content_hash:
            return Path(fallback)
        return None

    def discard(self, content_hash: str) -> None:
        for suffix in KEPT_SUFFIXES:
            self.path_for(content_hash, suffix).unlink(missing_ok=True)


def sha256_of(path: Path) -> str:
    from indexing.loaders import file_sha256

    return file_sha256(path)
