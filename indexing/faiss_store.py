"""One FAISS index per collection: IndexIDMap2 over inner product of normalized vectors, where
the FAISS id is the chunk's SQL primary key. A derived file, rebuilt from SQL when out of step."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

INDEX_FILE = "faiss.index"


class FaissStore:
    """Add, remove and search chunk vectors by chunk id; saved atomically to ``folder``."""

    def __init__(self, folder: Path, dim: int, *, fresh: bool = False) -> None:
        """Open the saved index in ``folder``, or start empty (always, with ``fresh``)."""
        import faiss

        self.path = Path(folder) / INDEX_FILE
        self.dim = dim
        self._stamp: tuple[int, int, int] | None = None  # the file as last read or written here
        if self.path.is_file() and not fresh:
            self._read()
        else:
            self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read(self) -> None:
        import faiss

        stamp = self._file_stamp()
        index = faiss.read_index(str(self.path))
        if index.d != self.dim:
            raise ValueError(f"{self.path} holds {index.d}-dim vectors, expected {self.dim}")
        self.index, self._stamp = index, stamp

    def reload_if_changed(self) -> bool:
        """Read the index again if another process saved it since this one last read or wrote it
        (one stat call when it did not); True when it did."""
        stamp = self._file_stamp()
        if stamp is None or stamp == self._stamp:
            return False
        self._read()
        return True

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    def ids(self) -> set[int]:
        import faiss

        return set(faiss.vector_to_array(self.index.id_map).tolist())

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        """``vectors``: (n, dim) float32, normalized."""
        import numpy as np

        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))

    def remove(self, ids: list[int]) -> int:
        import numpy as np

        if not ids:
            return 0
        return int(self.index.remove_ids(np.asarray(ids, dtype=np.int64)))

    def search(self, query: np.ndarray, k: int, *, ids: list[int] | None = None) -> list[tuple[int, float]]:
        """Top-k (chunk id, cosine score) for one (dim,) query vector.

        ``ids`` restricts the search to those chunk ids (a FAISS ``IDSelectorBatch`` over the
        external ids of the IndexIDMap2); an empty list finds nothing.
        """
        import faiss
        import numpy as np

        if self.size == 0 or (ids is not None and not ids):
            return []
        params = None
        if ids is not None:
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64)))
            k = min(k, len(ids))
        x = np.asarray(query, dtype=np.float32).reshape(1, -1)
        scores, found = self.index.search(x, min(k, self.size), params=params)
        return [(int(i), float(s)) for i, s in zip(found[0], scores[0], strict=True) if i >= 0]

    def save(self) -> None:
        import faiss

        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        faiss.write_index(self.index, str(tmp))
        os.replace(tmp, self.path)  # readers never see a half-written index
        self._stamp = self._file_stamp()

    def reset(self) -> None:
        import faiss

        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
