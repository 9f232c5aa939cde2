"""Per-collection store of summary vectors: one memory-mapped fp16 file of (rows, kappa, d).

Rows are appended (and fsynced) before the SQL transaction that references them commits, so a
crash leaves at worst unreferenced rows; the SQL chunk row holds its ``summary_row``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

STORE_FILE = "summaries.f16"


class SummaryStore:
    def __init__(self, folder: Path, *, kappa: int, dim: int, file_name: str | None = None) -> None:
        """``file_name``: the store's file in ``folder`` (a rebuild writes a new one; default STORE_FILE)."""
        self.path = Path(folder) / (file_name or STORE_FILE)
        self.kappa, self.dim = kappa, dim
        self.row_bytes = kappa * dim * 2
        self._map: np.memmap | None = None
        self._map_stamp: tuple[int, int, int] | None = None
        if self.path.is_file():
            size = self.path.stat().st_size
            if size % self.row_bytes:  # a crash mid-append: the torn row was never referenced
                with self.path.open("r+b") as fh:
                    fh.truncate(size - size % self.row_bytes)

    def _stamp(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return st.st_ino, st.st_mtime_ns, st.st_size

    @property
    def rows(self) -> int:
        return self.path.stat().st_size // self.row_bytes if self.path.is_file() else 0

    def _check_shape(self, vectors: np.ndarray) -> None:
        if vectors.ndim != 3 or vectors.shape[1:] != (self.kappa, self.dim):
            raise ValueError(f"expected (n, {self.kappa}, {self.dim}) summary vectors, got {vectors.shape}")

    def append(self, vectors: np.ndarray) -> list[int]:
        """Append (n, kappa, d) vectors; return their row numbers."""
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype=np.float16)
        self._check_shape(vectors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("ab") as fh:
            first = fh.seek(0, os.SEEK_END) // self.row_bytes  # under the collection's write lock: no one else appends
            fh.write(vectors.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        self._map = None
        return list(range(first, first + len(vectors)))

    def get(self, rows: list[int]) -> np.ndarray:
        """(len(rows), kappa, d) float16."""
        import numpy as np

        if not rows:  # an empty collection has no file yet
            return np.zeros((0, self.kappa, self.dim), dtype=np.float16)
        total = self.rows
        bad = [r for r in rows if not 0 <= r < total]
        if bad:
            raise IndexError(f"summary rows {bad[:5]} are missing from {self.path} ({total} rows): rebuild the collection")
        stamp = self._stamp()
        if self._map is None or self._map_stamp != stamp:  # grown, erased or replaced by any process since
            self._map = np.memmap(self.path, dtype=np.float16, mode="r", shape=(total, self.kappa, self.dim))
            self._map_stamp = stamp
        return np.asarray(self._map[rows])

    def erase(self, rows: list[int]) -> None:
        """Overwrite rows with zeros: a deleted document's summary vectors do not linger on disk."""
        if not rows:
            return
        zeros = bytes(self.row_bytes)
        with self.path.open("r+b") as fh:
            for row in rows:
                fh.seek(row * self.row_bytes)
                fh.write(zeros)
            fh.flush()
            os.fsync(fh.fileno())
        self._map = None

    def replace_all(self, vectors: np.ndarray) -> list[int]:
        """Atomically rewrite the store with exactly these (n, kappa, d) rows (compaction on rebuild)."""
        import numpy as np

        vectors = np.ascontiguousarray(vectors, dtype=np.float16)
        if len(vectors) == 0:
            vectors = vectors.reshape(0, self.kappa, self.dim)
        self._check_shape(vectors)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(vectors.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        self._map = None
        return list(range(len(vectors)))
