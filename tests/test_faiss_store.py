"""indexing/faiss_store.py: chunk ids (not positions) in and out, removal, persistence."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.faiss_store import INDEX_FILE, FaissStore

DIM = 8


def _unit(*values: float) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[: len(values)] = values
    return v / np.linalg.norm(v)


def _basis(i: int) -> np.ndarray:
    v = np.zeros(DIM, dtype=np.float32)
    v[i] = 1.0
    return v


@pytest.fixture
def store(tmp_path):
    s = FaissStore(tmp_path / "col", DIM)
    # ids far from 0..n-1 so positions can never pass for ids
    s.add([1001, 57, 9_000_000_123], np.stack([_basis(0), _basis(1), _basis(2)]))
    return s


def test_new_store_is_empty(tmp_path):
    s = FaissStore(tmp_path / "none", DIM)
    assert s.size == 0
    assert s.ids() == set()
    assert s.search(_basis(0), 5) == []
    assert not (tmp_path / "none" / INDEX_FILE).exists()  # nothing written until save()


def test_search_returns_chunk_ids_in_score_order(store):
    assert store.size == 3
    assert store.ids() == {1001, 57, 9_000_000_123}
    q = _unit(0.2, 0.9, 0.5)  # closest to id 57 (axis 1), then 9_000_000_123 (axis 2), then 1001 (axis 0)
    hits = store.search(q, 3)
    assert [i for i, _ in hits] == [57, 9_000_000_123, 1001]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, [q[1], q[2], q[0]], rtol=1e-5)
    assert all(isinstance(i, int) and isinstance(s, float) for i, s in hits)


def test_search_top1_and_cosine_of_exact_match(store):
    hits = store.search(_basis(2), 1)
    assert len(hits) == 1
    assert hits[0][0] == 9_000_000_123
    assert hits[0][1] == pytest.approx(1.0, abs=1e-6)


def test_search_accepts_float64_and_row_vector(store):
    q = _unit(1.0, 0.1).astype(np.float64).reshape(1, -1)
    assert store.search(q, 1)[0][0] == 1001


def test_k_larger_than_size(store):
    hits = store.search(_basis(0), 100)
    assert len(hits) == 3
    assert {i for i, _ in hits} == {1001, 57, 9_000_000_123}
    assert all(i >= 0 for i, _ in hits)  # no FAISS -1 padding leaks out


def test_remove_by_id(store):
    assert store.remove([57]) == 1
    assert store.size == 2
    assert store.ids() == {1001, 9_000_000_123}
    for q in (_basis(1), _unit(0.2, 0.9, 0.5), _basis(0)):
        assert 57 not in [i for i, _ in store.search(q, 10)]
    assert store.search(_basis(1), 10)  # the others are still found
    assert store.remove([57]) == 0  # already gone
    assert store.remove([]) == 0
    assert store.remove([424242]) == 0  # never there
    assert store.size == 2


def test_remove_several_then_add_again(store):
    assert store.remove([1001, 9_000_000_123]) == 2
    assert store.ids() == {57}
    assert [i for i, _ in store.search(_basis(0), 5)] == [57]
    store.add([1001], _basis(0)[None])
    assert store.ids() == {57, 1001}
    assert store.search(_basis(0), 1)[0][0] == 1001


def test_add_checks_lengths(store):
    with pytest.raises(ValueError, match="2 ids for 1 vectors"):
        store.add([1, 2], _basis(0)[None])
    store.add([], np.zeros((0, DIM), dtype=np.float32))
    assert store.size == 3


def test_save_and_reopen_keeps_ids_and_vectors(tmp_path, store):
    store.remove([57])
    store.add([77], _basis(3)[None])
    store.save()
    path = tmp_path / "col" / INDEX_FILE
    assert path.is_file()
    assert not path.with_suffix(".tmp").exists()
    again = FaissStore(tmp_path / "col", DIM)
    assert again.size == 3
    assert again.ids() == {1001, 77, 9_000_000_123}
    assert again.search(_basis(3), 1)[0][0] == 77
    assert 57 not in [i for i, _ in again.search(_basis(1), 10)]
    # removal after reopen still works by id
    assert again.remove([1001]) == 1
    assert again.ids() == {77, 9_000_000_123}


def test_save_overwrites_previous_file(tmp_path, store):
    store.save()
    store.remove([1001, 57])
    store.save()
    assert FaissStore(tmp_path / "col", DIM).ids() == {9_000_000_123}


def test_dim_mismatch_on_reopen_raises(tmp_path, store):
    store.save()
    with pytest.raises(ValueError, match=r"8-dim vectors, expected 16"):
        FaissStore(tmp_path / "col", 16)


def test_reset_empties(tmp_path, store):
    store.reset()
    assert store.size == 0 and store.ids() == set()
    assert store.search(_basis(0), 3) == []
    store.add([5], _basis(0)[None])
    assert store.search(_basis(0), 3)[0][0] == 5


def test_many_random_vectors_match_brute_force(tmp_path):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(200, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = list(rng.choice(10**9, size=200, replace=False))
    s = FaissStore(tmp_path / "r", DIM)
    s.add(ids, vectors)
    q = vectors[17] + 0.1 * rng.normal(size=DIM).astype(np.float32)
    q /= np.linalg.norm(q)
    expected = np.argsort(-(vectors @ q))[:10]
    assert [i for i, _ in s.search(q, 10)] == [int(ids[j]) for j in expected]
