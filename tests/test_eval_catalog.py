"""Migration 0002: evaluation tables, upgraded onto an existing 0001 catalog; row uniqueness."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import IntegrityError

from indexing.catalog import Collection, open_catalog
from indexing.eval_catalog import EvalRow, EvalRun


def _run(name: str = "r") -> EvalRun:
    return EvalRun(name=name, dataset="quality", path="/q.jsonl", modes="lloco,rag", settings={"top_k": 4},
                   decoder="tiny", compressor="untrained-k4", status="running")


def test_upgrade_from_0001_keeps_data_and_adds_eval_tables(catalog_at):
    url, engine = catalog_at("0001")
    assert "eval_runs" not in inspect(engine).get_table_names()
    sessions = open_catalog(url)
    with sessions() as s:
        assert s.scalars(select(Collection.name)).all() == ["old"]
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0003"  # upgraded to the head
    assert {"eval_runs", "eval_rows"} <= set(inspect(sessions.kw["bind"]).get_table_names())


def test_rows_are_unique_per_question_and_mode_and_cascade(tmp_path):
    sessions = open_catalog(f"sqlite:///{tmp_path / 'c.db'}")
    with sessions.begin() as s:
        run = _run()
        s.add(run)
        s.flush()
        for mode in ("lloco", "rag"):
            s.add(EvalRow(run_id=run.id, qid="q1", doc_id="d", mode=mode, question="?", references=["a"],
                          score={"f1": 1.0}, details={}, status="ok", chunk_ids=[3, 1]))
        run_id = run.id
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add(EvalRow(run_id=run_id, qid="q1", doc_id="d", mode="rag", question="?", references=[], score={},
                      details={}, status="failed", chunk_ids=[]))
    with sessions() as s:
        rows = s.scalars(select(EvalRow)).all()
        assert [(r.mode, r.score, r.chunk_ids) for r in rows] == [("lloco", {"f1": 1.0}, [3, 1]), ("rag", {"f1": 1.0}, [3, 1])]
    with sessions.begin() as s:
        s.execute(text("DELETE FROM eval_runs WHERE id = :id"), {"id": run_id})
    with sessions() as s:
        assert s.scalars(select(EvalRow)).all() == []
    with pytest.raises(IntegrityError), sessions.begin() as s:
        s.add_all([_run("same"), _run("same")])
