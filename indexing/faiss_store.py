"""One FAISS index per collection: IndexIDMap2 over inner product of normalized vectors, where
the FAISS id is the chunk's SQL primary key. A derived file, rebuilt from SQL when out of step.

Exact search (IndexFlatIP) up to ``ann_threshold`` vectors; past it the index becomes approximate
(issue 14): an inverted file over k-means cells with 8-bit scalar-quantized vectors
(``IVF{nlist},SQ8``: a quarter of the flat index's memory, 384 bytes a 384-dim vector), trained on
the vectors it holds — which are the embeddings SQL stores, so a rebuild trains it again — and
searched in a sixth of its cells (:func:`ivf_shape`). The cells are those of the size at which it
was trained, until the collection has grown to twice as many cells' worth (~4x the vectors,
:meth:`FaissStore.outgrown`): then the collection trains it again from the exact embeddings SQL holds
(:meth:`FaissStore.retrain`), as a rebuild would. Deletes stay real: an IVF
index removes ids (IndexIDMap2 semantics), unlike HNSW, which could only hide them. A search restricted to some chunks (one
document's) visits every cell, so no allowed chunk is missed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import numpy as np

INDEX_FILE = "faiss.index"
IndexKind = Literal["flat", "ivf"]


def ivf_shape(n: int) -> tuple[int, int]:
    """(nlist, nprobe) for ``n`` vectors: ~4 sqrt(n) cells, with at least 39 training points each
    (FAISS's minimum), and a sixth of them probed (at least 16). Measured (`bench/ann_bench.py`, 384-dim
    vectors around 2,000 centres): probing a sixteenth gave recall@10 0.86, an eighth 0.93, a sixth
    0.95 (p95 17 ms at 1M vectors on 2 cores), a quarter 0.97 (p95 23 ms)."""
    nlist = max(16, min(65536, int(4 * n ** 0.5), n // 39))
    return nlist, min(nlist, max(16, nlist // 6))


class FaissStore:
    """Add, remove and search chunk vectors by chunk id; saved atomically to ``folder``."""

    def __init__(self, folder: Path, dim: int, *, fresh: bool = False, ann_threshold: int | None = None) -> None:
        """Open the saved index in ``folder``, or start empty (always, with ``fresh``). ``ann_threshold``:
        the size at which an exact index becomes approximate (None: never)."""
        self.path = Path(folder) / INDEX_FILE
        self.dim = dim
        self.ann_threshold = ann_threshold
        self._stamp: tuple[int, int, int] | None = None  # the file as last read or written here
        if self.path.is_file() and not fresh:
            self._read()
        else:
            self.reset()

    def _file_stamp(self) -> tuple[int, int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _read(self) -> None:
        import faiss

        stamp = self._file_stamp()
        index = faiss.read_index(str(self.path))  # the concrete class (IndexIDMap2, IndexIVFScalarQuantizer)
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

    @property
    def kind(self) -> IndexKind:
        """'flat' (exact) or 'ivf' (approximate)."""
        import faiss

        return "ivf" if isinstance(self.index, faiss.IndexIVF) else "flat"

    def ids(self) -> set[int]:
        import faiss

        if self.kind == "flat":
            return set(faiss.vector_to_array(self.index.id_map).tolist())
        lists, out = self.index.invlists, set()  # an IVF keeps each vector's id in its cell's list
        for cell in range(self.index.nlist):
            if n := lists.list_size(cell):
                out.update(faiss.rev_swig_ptr(lists.get_ids(cell), n).tolist())
        return out

    def _to_ivf(self) -> None:
        """Replace the exact index by an IVF-SQ8 one trained on the vectors it holds."""
        import faiss
        import numpy as np

        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)  # (n,)
        self.retrain(ids, self.index.index.reconstruct_n(0, self.size))  # (n, dim) float32, in the id map's order

    def outgrown(self) -> bool:
        """An approximate index whose size now calls for at least twice the cells it was trained with."""
        return self.kind == "ivf" and ivf_shape(self.size)[0] >= 2 * self.index.nlist

    def retrain(self, ids, vectors: np.ndarray) -> None:
        """Replace the index by an IVF-SQ8 one trained on ``vectors`` (n, dim) float32 — exact ones: the
        flat index's, or SQL's embeddings, never an IVF's 8-bit reconstructions — holding them under
        ``ids``. An IVF stores ids itself, so it is not wrapped in an IndexIDMap2, which would hand it
        plain search parameters its restricted search refuses."""
        import faiss
        import numpy as np

        ids = np.asarray(ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n = len(ids)
        nlist, nprobe = ivf_shape(n)
        ivf = faiss.index_factory(self.dim, f"IVF{nlist},SQ8", faiss.METRIC_INNER_PRODUCT)  # IndexIVFScalarQuantizer
        # k-means on at most 64 points a cell (FAISS's own cap is 256): at 1M vectors, ~1/4 of them
        sample = vectors if n <= 64 * nlist else vectors[np.random.default_rng(0).choice(n, 64 * nlist, replace=False)]
        ivf.train(np.ascontiguousarray(sample))
        ivf.nprobe = nprobe
        ivf.add_with_ids(vectors, ids)
        self.index = ivf

    def add(self, ids: list[int], vectors: np.ndarray) -> None:
        """``vectors``: (n, dim) float32, normalized."""
        import numpy as np

        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        if self.ann_threshold is not None and self.kind == "flat" and self.size >= self.ann_threshold:
            self._to_ivf()

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
            selector = faiss.IDSelectorBatch(np.asarray(ids, dtype=np.int64))
            # an IVF visits every cell then, so an allowed chunk outside the probed ones is not missed
            params = (faiss.SearchParametersIVF(sel=selector, nprobe=self.index.nlist) if self.kind == "ivf"
                      else faiss.SearchParameters(sel=selector))
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
        """Empty and exact again (vectors added past ``ann_threshold`` train a new approximate one)."""
        import faiss

        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim))
