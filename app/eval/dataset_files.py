"""Reading evaluation files with errors that say where: the file, the line (JSONL) or the item
(JSON), and the field (:class:`At`); JSONL and JSON loading; small text helpers the readers share."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.eval.records import DatasetError

__all__ = ["At", "JSON_NAMES", "first_line_title", "jsonl_objects", "load_json", "unique"]


class At:
    """Where in a file we are, to raise errors that say so."""

    def __init__(self, path: Path, *, line: int | None = None, location: str | None = None) -> None:
        self.path, self.line, self.location = path, line, location

    def fail(self, problem: str, field: str | None = None) -> DatasetError:
        return DatasetError(self.path, problem, line=self.line, location=self.location, field=field)

    def get(self, obj: Any, key: str, kind: type | tuple[type, ...], *, label: str | None = None) -> Any:
        """``obj[key]``, which must exist and be of ``kind``."""
        label = label or key
        if not isinstance(obj, dict):
            raise self.fail(f"expected a JSON object holding {label!r}, got {type(obj).__name__}", label)
        if key not in obj:
            raise self.fail(f"missing field {label!r}", label)
        value = obj[key]
        if not isinstance(value, kind):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            want = " or ".join(JSON_NAMES.get(k, k.__name__) for k in kinds)
            raise self.fail(f"field {label!r} should be {want}, got {type(value).__name__}", label)
        return value

    def strings(self, obj: Any, key: str) -> list[str]:
        values = self.get(obj, key, list)
        for i, v in enumerate(values):
            if not isinstance(v, str):
                raise self.fail(f"{key}[{i}] should be a string, got {type(v).__name__}", f"{key}[{i}]")
        return values


JSON_NAMES = {str: "a string", list: "a list", dict: "an object", int: "an integer"}


def jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(1-based line number, object) for each non-blank line of a JSONL file."""
    try:
        with path.open(encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise DatasetError(path, f"broken JSON ({e.msg}, column {e.colno})", line=lineno) from None
                if not isinstance(obj, dict):
                    raise DatasetError(path, f"expected a JSON object, got {type(obj).__name__}", line=lineno)
                yield lineno, obj
    except UnicodeDecodeError as e:
        raise DatasetError(path, f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise DatasetError(path, f"cannot read ({e.strerror})") from None


def load_json(path: Path) -> Any:
    """A whole JSON file, or DatasetError saying why not."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DatasetError(path, f"broken JSON ({e.msg}, column {e.colno})", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise DatasetError(path, f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise DatasetError(path, f"cannot read ({e.strerror})") from None


def first_line_title(text: str, fallback: str) -> str:
    """A document's first line as its title, unless it is long, empty or a section name."""
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if not first or len(first) > 120 or first.lower() in {"introduction", "abstract"}:
        return fallback
    return first


def unique(items: list[str]) -> list[str]:
    """The non-blank items, stripped, each once, in order."""
    return list(dict.fromkeys(s.strip() for s in items if s.strip()))
