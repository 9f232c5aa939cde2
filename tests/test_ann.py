"""Approximate retrieval for big collections (issue 14, item 4): past ``ann_threshold`` vectors a
collection's FAISS index becomes IVF-SQ8, trained on the vectors it holds; recall against exact
search on a known set, deletes that really delete, restricted searches that miss nothing, the kind
kept across save and load and a rebuild from SQL, and the setting reaching the collections."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.faiss_store import FaissStore, ivf_shape

DIM = 32


def clustered(n: int, *, seed: int = 0, centres: int = 50) -> np.ndarray:
    """``n`` normalized vectors around ``centres`` random directions (embeddings cluster by topic)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, DIM))
    x = c[rng.integers(0, centres, n)] + 0.35 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top(vectors: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    return ids[np.argsort(-(vectors @ query))[:k]].tolist()


@pytest.fixture
def data():
    vectors = clustered(6000)
    ids = np.arange(1000, 7000)  # chunk ids: not 0..n-1
    return vectors, ids


def test_shape_of_the_inverted_file():
    assert ivf_shape(100_000) == (1264, 210)
    assert ivf_shape(1_000_000) == (4000, 666)
    nlist, nprobe = ivf_shape(2000)
    assert nlist * 39 <= 2000 and 16 <= nprobe <= nlist


def test_past_the_threshold_the_index_is_approximate_with_high_recall(tmp_path, data):
    vectors, ids = data
    store = FaissStore(tmp_path, DIM, ann_threshold=5000)
    store.add(ids[:4000].tolist(), vectors[:4000])
    assert store.kind == "flat"
    store.add(ids[4000:].tolist(), vectors[4000:])
    assert store.kind == "ivf" and store.size == 6000 and store.ids() == set(ids.tolist())
    queries = clustered(100, seed=1)
    recall = np.mean([len({i for i, _ in store.search(q, 10)} & set(exact_top(vectors, ids, q, 10))) / 10
                      for q in queries])
    assert recall >= 0.95, recall
    # scores stay cosines (8-bit quantization moves them a little)
    best, score = store.search(queries[0], 1)[0]
    assert abs(score - float(vectors[ids.tolist().index(best)] @ queries[0])) < 0.02


def test_deletes_really_delete_and_restricted_search_misses_nothing(tmp_path, data):
    vectors, ids = data
    store = FaissStore(tmp_path, DIM, ann_threshold=1000)
    store.add(ids.tolist(), vectors)
    gone = ids[::3].tolist()
    assert store.remove(gone) == len(gone) and store.size == 6000 - len(gone)
    assert not store.ids() & set(gone)
    for q in clustered(20, seed=2):
        assert not {i for i, _ in store.search(q, 50)} & set(gone)
    # one "document": 40 chunks scattered over the cells; the search restricted to them finds the exact best
    rng = np.random.default_rng(3)
    allowed = sorted(rng.choice([i for i in ids.tolist() if i not in set(gone)], 40, replace=False).tolist())
    rows = [ids.tolist().index(i) for i in allowed]
    q = clustered(1, seed=4)[0]
    found = store.search(q, 5, ids=allowed)
    assert [i for i, _ in found] == exact_top(vectors[rows], np.asarray(allowed), q, 5)
    assert store.search(q, 5, ids=gone[:10]) == []  # deleted chunks are not found even when asked for


def test_the_kind_survives_save_load_and_a_reset_retrains(tmp_path, data):
    vectors, ids = data
    store = FaissStore(tmp_path, DIM, ann_threshold=3000)
    store.add(ids.tolist(), vectors)
    store.save()
    q = clustered(1, seed=5)[0]
    again = FaissStore(tmp_path, DIM, ann_threshold=3000)
    assert again.kind == "ivf" and again.search(q, 10) == store.search(q, 10)
    again.reset()
    again.add(ids[:2000].tolist(), vectors[:2000])
    assert again.kind == "flat"  # a rebuild below the threshold is exact again
    assert FaissStore(tmp_path, DIM).kind == "ivf"  # the file on disk until saved


def test_the_setting_reaches_a_collection_and_deletes_stay_real(service, pdf_factory):
    service.settings.ann_threshold = 40
    service.create_collection("c")
    pages = [" ".join(f"Lighthouse {i} stood on rock {i * 7} in the year {1700 + i}." for i in range(j, j + 30))
             for j in range(0, 300, 30)]
    [a] = service.ingest("c", [pdf_factory("a.pdf", pages)])
    [b] = service.ingest("c", [pdf_factory("b.pdf", ["Honeybees dance to show where the nectar is. " * 40])])
    index = service.index(service.collection_row("c"))
    assert a.n_chunks + b.n_chunks >= 40 and index.faiss.kind == "ivf"
    assert service.check_collection("c") == []
    service.delete_document("c", "a.pdf")
    assert index.faiss.size == b.n_chunks and service.check_collection("c") == []
    found = service.retrieve("c", "Where do honeybees find nectar?", top_k=3)
    assert found and all(c.document == "b.pdf" for c, _ in found)


def test_an_index_outgrowing_its_cells_is_trained_again_on_exact_vectors(tmp_path, data):
    vectors, ids = data
    store = FaissStore(tmp_path, DIM, ann_threshold=1000)
    store.add(ids[:1000].tolist(), vectors[:1000])
    trained = store.index.nlist
    assert store.kind == "ivf" and trained == ivf_shape(1000)[0] and not store.outgrown()
    store.add(ids[1000:1500].tolist(), vectors[1000:1500])
    assert not store.outgrown()  # 1.5x the vectors: still under twice the cells
    store.add(ids[1500:].tolist(), vectors[1500:])
    assert store.outgrown() and store.index.nlist == trained  # adding never retrains by itself
    store.retrain(ids, vectors)
    assert store.index.nlist == ivf_shape(6000)[0] >= 2 * trained and not store.outgrown()
    assert store.ids() == set(ids.tolist())
    queries = clustered(50, seed=9)
    recall = np.mean([len(set(exact_top(vectors, ids, q, 10)) & {i for i, _ in store.search(q, 10)}) / 10
                      for q in queries])
    assert recall >= 0.9


def test_a_growing_collection_retrains_its_index_from_sql(service, pdf_factory, monkeypatch):
    import indexing.faiss_store as faiss_store

    # cells by size scaled down so that a few small PDFs outgrow them: one cell per 20 vectors
    monkeypatch.setattr(faiss_store, "ivf_shape", lambda n: (max(2, n // 20), max(2, n // 20)))
    service.settings.ann_threshold = 40
    service.create_collection("c")
    pages = [" ".join(f"Lighthouse {i} stood on rock {i * 7} in the year {1700 + i}." for i in range(j, j + 30))
             for j in range(0, 300, 30)]
    [a] = service.ingest("c", [pdf_factory("a.pdf", pages)])
    index = service.index(service.collection_row("c"))
    first = index.faiss.index.nlist
    assert index.faiss.kind == "ivf" and first >= 2
    more = [pdf_factory(f"m{k}.pdf", [p.replace("Lighthouse", f"Tower{k}") for p in pages]) for k in range(4)]
    results = service.ingest("c", more)
    total = a.n_chunks + sum(r.n_chunks for r in results)
    assert index.faiss.size == total and index.faiss.index.nlist >= 2 * first  # trained again as it grew
    assert not index.faiss.outgrown() and service.check_collection("c") == []
    with service.sessions() as s:
        ids, vectors = index._embeddings(s)
    found = index.search(vectors[-1], 1)
    assert found[0][0] == ids[-1]  # the last chunk's own embedding finds it
