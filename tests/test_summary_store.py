"""indexing/summary_store.py: an append-only fp16 file of (rows, kappa, d)."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.summary_store import STORE_FILE, SummaryStore

KAPPA, DIM = 3, 5


def _vectors(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, KAPPA, DIM)).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "collection"


def test_empty_store(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    assert s.rows == 0
    assert s.row_bytes == KAPPA * DIM * 2
    assert not (folder / STORE_FILE).exists()


def test_getting_no_rows_of_an_empty_store_needs_no_file(folder):
    """An empty collection asked in lloco mode retrieves nothing: no file, no error."""
    got = SummaryStore(folder, kappa=KAPPA, dim=DIM).get([])
    assert got.shape == (0, KAPPA, DIM) and got.dtype == np.float16
    assert not (folder / STORE_FILE).exists()


def test_append_returns_consecutive_rows_across_appends_and_reopen(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    assert s.append(_vectors(3, 1)) == [0, 1, 2]
    assert s.append(_vectors(2, 2)) == [3, 4]
    assert s.rows == 5
    again = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    assert again.rows == 5
    assert again.append(_vectors(1, 3)) == [5]
    assert (folder / STORE_FILE).stat().st_size == 6 * KAPPA * DIM * 2
    assert again.append(np.zeros((0, KAPPA, DIM))) == []
    assert again.rows == 6


def test_get_returns_the_same_fp16_values(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    a, b = _vectors(4, 1), _vectors(3, 2)
    s.append(a)
    s.append(b)
    both = np.concatenate([a, b]).astype(np.float16)
    got = s.get([0, 1, 2, 3, 4, 5, 6])
    assert got.dtype == np.float16
    assert got.shape == (7, KAPPA, DIM)
    np.testing.assert_array_equal(got, both)
    np.testing.assert_array_equal(s.get([6, 0, 4]), both[[6, 0, 4]])  # any order
    np.testing.assert_array_equal(s.get([2, 2]), both[[2, 2]])
    # reopened: same values
    np.testing.assert_array_equal(SummaryStore(folder, kappa=KAPPA, dim=DIM).get([5, 1]), both[[5, 1]])


def test_get_sees_rows_appended_after_a_get(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    s.append(_vectors(2, 1))
    s.get([0, 1])  # maps the file
    rows = s.append(_vectors(2, 2))
    np.testing.assert_array_equal(s.get(rows), _vectors(2, 2).astype(np.float16))


def test_fp16_values_are_stored_as_fp16(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    v = np.full((1, KAPPA, DIM), 1.0 / 3.0, dtype=np.float32)
    s.append(v)
    assert s.get([0])[0, 0, 0] == np.float16(1.0 / 3.0)
    raw = np.frombuffer((folder / STORE_FILE).read_bytes(), dtype=np.float16)
    assert raw.shape == (KAPPA * DIM,)


@pytest.mark.parametrize("shape", [(2, KAPPA + 1, DIM), (2, KAPPA, DIM - 1), (KAPPA, DIM), (1, 1, KAPPA, DIM)])
def test_wrong_shape_raises(folder, shape):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    with pytest.raises(ValueError, match=rf"expected \(n, {KAPPA}, {DIM}\)"):
        s.append(np.zeros(shape, dtype=np.float32))
    assert s.rows == 0


def test_erase_zeroes_exactly_those_rows(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    v = _vectors(5, 1) + 10.0  # no zeros by chance
    s.append(v)
    s.get([0])  # a cached map must not hide the erase
    s.erase([1, 3])
    got = s.get(list(range(5)))
    assert not got[1].any() and not got[3].any()
    np.testing.assert_array_equal(got[[0, 2, 4]], v[[0, 2, 4]].astype(np.float16))
    assert s.rows == 5  # erase never shrinks the file
    reopened = SummaryStore(folder, kappa=KAPPA, dim=DIM).get([1, 2])
    assert not reopened[0].any() and reopened[1].all()
    s.erase([])
    assert s.rows == 5


def test_torn_trailing_row_is_truncated_on_open(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    v = _vectors(3, 1)
    s.append(v)
    path = folder / STORE_FILE
    with path.open("ab") as fh:
        fh.write(b"\xde\xad\xbe\xef\x01\x02\x03")  # a crash mid-append
    assert path.stat().st_size % s.row_bytes != 0
    again = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    assert path.stat().st_size == 3 * s.row_bytes
    assert again.rows == 3
    np.testing.assert_array_equal(again.get([0, 1, 2]), v.astype(np.float16))
    assert again.append(_vectors(1, 2)) == [3]  # new rows land on a row boundary
    np.testing.assert_array_equal(again.get([3]), _vectors(1, 2).astype(np.float16))
    np.testing.assert_array_equal(again.get([2]), v[2:3].astype(np.float16))


def test_torn_first_row_leaves_an_empty_store(folder):
    folder.mkdir(parents=True)
    (folder / STORE_FILE).write_bytes(b"\x00" * (KAPPA * DIM * 2 - 1))
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    assert s.rows == 0
    assert s.append(_vectors(1)) == [0]


def test_missing_rows_raise_index_error_with_message(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    s.append(_vectors(2))
    with pytest.raises(IndexError, match=r"summary rows \[2\] are missing .*2 rows.*rebuild"):
        s.get([0, 2])
    with pytest.raises(IndexError, match=r"\[-1\]"):
        s.get([-1])
    empty = SummaryStore(folder / "other", kappa=KAPPA, dim=DIM)
    with pytest.raises(IndexError, match="missing"):
        empty.get([0])


def test_replace_all(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    s.append(_vectors(6, 1))
    s.get([5])
    new = _vectors(2, 9)
    assert s.replace_all(new) == [0, 1]
    assert s.rows == 2
    np.testing.assert_array_equal(s.get([0, 1]), new.astype(np.float16))
    with pytest.raises(IndexError):
        s.get([2])
    assert not (folder / STORE_FILE).with_suffix(".tmp").exists()
    assert s.append(_vectors(1, 3)) == [2]
    np.testing.assert_array_equal(SummaryStore(folder, kappa=KAPPA, dim=DIM).get([0, 1]), new.astype(np.float16))


def test_replace_all_on_new_store_and_with_nothing(folder):
    s = SummaryStore(folder, kappa=KAPPA, dim=DIM)
    assert s.replace_all(_vectors(3)) == [0, 1, 2]
    assert s.replace_all(np.zeros((0, KAPPA, DIM))) == []
    assert s.rows == 0
    assert s.append(_vectors(1)) == [0]
