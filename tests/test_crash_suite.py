"""The crash suite's fast variant (issue 12): `lloco` processes killed with SIGKILL at random points of
an ingest, a rebuild and a delete (tiny decoder, real embedder); after every kill the collection's
catalog, FAISS index and summary store agree, and running the job again completes it.
The full suite: `.venv/bin/python -m bench.crash_suite --pdf data/demo/lighthouses.pdf --trials 20`."""

from __future__ import annotations

import pytest

from bench.crash_suite import run_trials
from tests.conftest import MODEL_CACHE
from tests.fakes import make_pdf

pytestmark = pytest.mark.integration


def test_kills_at_random_points_leave_a_consistent_collection(tmp_path, tiny_folder):
    pages = [" ".join(f"Page {p} line {i}: the keeper logged {i * p} ships in harbour {p}." for i in range(40))
             for p in range(30)]
    pdf = make_pdf(tmp_path / "log.pdf", pages)
    env = {"LLOCO_DECODER": str(tiny_folder), "LLOCO_COMPRESSOR": "untrained", "LLOCO_MODEL_CACHE": str(MODEL_CACHE),
           "LLOCO_CHUNK_TOKENS": "48", "LLOCO_CHUNK_OVERLAP": "8", "LLOCO_SUMMARY_TOKENS": "4",
           "LLOCO_DEVICE": "cpu", "LLOCO_DTYPE": "float32"}
    lines: list[str] = []
    trials = run_trials(pdf, trials=3, home=tmp_path / "home", seed=1, env=env, say=lines.append)
    assert [t.what for t in trials] == ["ingest", "rebuild", "delete"]
    assert all(t.consistent for t in trials), lines
