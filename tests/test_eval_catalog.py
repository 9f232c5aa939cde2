"""Migrations 0002 (evaluation tables) and 0004 (context tokens), upgraded onto existing catalogs; row uniqueness."""

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
        assert s.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0017"  # upgraded to the head
    assert {"eval_runs", "eval_rows"} <= set(inspect(sessions.kw["bind"]).get_table_names())


def test_upgrade_from_0003_keeps_eval_rows_and_adds_context_tokens(catalog_at):
    url, engine = catalog_at("0003")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO eval_runs (name, dataset, path, modes, settings, decoder, compressor, status, "
                          "created_at) VALUES ('r', 'quality', '/q', 'lloco', '{}', 'd', 'c', 'done', '2024-01-01')"))
        conn.execute(text("INSERT INTO eval_rows (run_id, qid, doc_id, mode, question, \"references\", score, "
                          "details, status, prompt_tokens, chunk_ids, created_at) VALUES (1, 'q1', 'd', 'lloco', '?', "
                          "'[]', '{\"f1\": 0.5}', '{}', 'ok', 40, '[]', '2024-01-01')"))
    assert "context_tokens" not in {c["name"] for c in inspect(engine).get_columns("eval_rows")}
    sessions = open_catalog(url)
    with sessions() as s:
        row = s.scalars(select(EvalRow)).one()
        assert (row.qid, row.score, row.prompt_tokens, row.context_tokens) == ("q1", {"f1": 0.5}, 40, None)
        row.context_tokens = 16
        s.commit()
        assert s.scalars(select(EvalRow.context_tokens)).one() == 16


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
