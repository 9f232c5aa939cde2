"""Trained artifacts shipped with lloco (issue: learn offline), per decoder name.

``model/shipped/<decoder>/compressor`` holds a compressor checkpoint and
``model/shipped/<decoder>/reader`` the generic "read summaries and answer" LoRA. Either may be
absent; then the compressor is untrained and lloco mode runs without a reader adapter.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED = Path(__file__).with_name("shipped")


def shipped_compressor(decoder: str) -> str | None:
    folder = SHIPPED / decoder / "compressor"
    return str(folder) if (folder / "compressor.json").is_file() else None


def shipped_reader_adapter(decoder: str) -> str | None:
    folder = SHIPPED / decoder / "reader"
    return str(folder) if (folder / "adapter_config.json").is_file() else None


def shipped_confidence(decoder: str) -> Path:
    """The answer-confidence models fitted for this decoder and its shipped reader (app.core.confidence);
    the file may be absent."""
    return SHIPPED / decoder / "confidence.json"
