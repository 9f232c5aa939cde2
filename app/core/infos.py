"""What the service reports about collections and documents: plain, frozen records (JSON through
:func:`app.jobs.runner.to_json`), with no catalog session behind them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CollectionInfo:
    id: int
    name: str
    created_at: datetime
    decoder: str
    embedder: str
    compressor: str
    kappa: int
    chunk_tokens: int
    chunk_overlap: int
    adapter_path: str | None
    n_documents: int
    n_failed: int
    n_chunks: int
    size_bytes: int


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    filename: str
    content_hash: str
    status: str
    error: str | None
    n_pages: int
    n_chunks: int
    size_bytes: int
    created_at: datetime
