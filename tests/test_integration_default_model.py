"""End to end on the real default model (SmolLM2-135M from its wheel) and embedder (MiniLM)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.cli.demo import ensure_demo_collection
from app.core.demo import DEMO_DIR, demo_questions
from indexing.catalog import Chunk, Page
from tests.cli_runner import flat
from tests.conftest import MODEL_CACHE

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(real_service):
    ensure_demo_collection(real_service)
    return real_service


def test_demo_collection_is_built(demo):
    docs = {d.filename: d for d in demo.list_documents("demo")}
    assert set(docs) == {"lighthouses.pdf", "honeybees.pdf", "tides.md", "coffee.txt"}
    assert all(d.status == "ready" and d.n_chunks > 0 for d in docs.values())
    assert docs["lighthouses.pdf"].n_pages == 6 and docs["honeybees.pdf"].n_pages == 5
    # re-ingesting the same folder changes nothing
    before = demo.get_collection("demo")
    files = [DEMO_DIR / name for name in docs]
    assert {r.status for r in demo.ingest("demo", files)} == {"skipped"}
    assert demo.get_collection("demo") == before


def test_citations_point_at_the_right_page(demo):
    top1 = 0
    questions = demo_questions()
    for q in questions:
        cites = [c for c, _ in demo.retrieve("demo", q["question"], top_k=4)]
        on_page = [c.document == q["document"] and c.page == q["page"] for c in cites]
        assert any(on_page), (q["question"], [(c.document, c.page) for c in cites])
        top1 += on_page[0]
    assert top1 >= len(questions) - 2  # measured: 11 of 12 at rank 1, the 12th at rank 2


def test_ask_in_every_mode(demo):
    question = "Who was the engineer of the third Eddystone lighthouse?"
    answers = {}
    for mode in ("lloco", "lloco-pure", "rag", "full"):
        stream = demo.ask("demo", question, mode=mode, top_k=4)
        pieces = list(stream)
        answers[mode] = a = stream.answer
        assert pieces and a.text and a.generated_tokens > 0
        assert 0 < a.retrieval_s < a.ttft_s <= a.total_s
        top = a.citations[0]
        assert (top.document, top.page) == ("lighthouses.pdf", 5)
        assert any(c.page == 5 and "John Smeaton" in c.snippet for c in a.citations)
    assert "Smeaton" in answers["rag"].text  # the plain-RAG baseline reads the text and answers
    rag, lloco, pure = answers["rag"], answers["lloco"], answers["lloco-pure"]
    assert rag.chunk_ids == lloco.chunk_ids == pure.chunk_ids  # same retrieval: a fair A/B
    with demo.sessions() as s:
        context_tokens = sum(s.scalars(select(Chunk.n_tokens).where(Chunk.id.in_(rag.chunk_ids))))
    kappa = demo.compressor.kappa
    # pure lloco: each chunk's tokens replaced by kappa vectors, nothing else differs
    assert rag.prompt_tokens - pure.prompt_tokens == context_tokens - kappa * len(rag.chunk_ids)
    assert pure.prompt_tokens * 4 < rag.prompt_tokens
    # lloco adds the question's sentences, within 1/8 of the chunks' text in all
    assert pure.context_tokens < lloco.context_tokens <= demo.settings.expand_share * rag.context_tokens
    # (each block of sentences is one more context in the prompt: one more "\n\n" separator token)
    assert 0 <= lloco.prompt_tokens - pure.prompt_tokens - (lloco.context_tokens - pure.context_tokens) <= len(rag.chunk_ids)
    assert "Smeaton" in lloco.text  # the demo question pure vectors answered with a wrong name (issue 10)
    assert answers["full"].prompt_tokens > rag.prompt_tokens


def test_delete_removes_everything(real_service, tmp_path):
    svc = real_service
    svc.create_collection("scratch")
    [result] = svc.ingest("scratch", [DEMO_DIR / "honeybees.pdf"])
    assert result.status == "ingested"
    index = svc.index(svc.collection_row("scratch"))
    assert index.faiss.size == result.n_chunks
    svc.delete_document("scratch", "honeybees.pdf")
    assert index.faiss.size == 0 and svc.list_documents("scratch") == []
    with svc.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Chunk).where(Chunk.collection_id == index.collection_id)) == 0
        assert s.scalar(select(func.count()).select_from(Page).where(Page.document_id == result.document_id)) == 0
    assert svc.retrieve("scratch", "queen bee eggs", top_k=3) == []
    svc.delete_collection("scratch")
    assert not index.folder.exists()


def test_cli_as_a_user_runs_it(tmp_path):
    # a fixed, wide terminal: Rich folds lines at COLUMNS, and a folded path would break the asserts
    env = {**os.environ, "LLOCO_HOME": str(tmp_path / "home"), "LLOCO_MODEL_CACHE": str(MODEL_CACHE), "COLUMNS": "10000"}
    lloco = [sys.executable, "-m", "app", ]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*lloco, *args], env=env, capture_output=True, text=True, timeout=600)

    listed = run("models", "list")
    assert listed.returncode == 0 and "smollm2-135m" in flat(listed.stdout) and "minilm-l6" in flat(listed.stdout)
    models = {m["name"]: m for m in json.loads(run("models", "list", "--json").stdout)}
    assert models["smollm2-135m"]["kind"] == "decoder" and models["minilm-l6"]["installed"] is True
    assert run("collections", "create", "notes").returncode == 0
    ingested = run("ingest", "notes", str(DEMO_DIR / "coffee.txt"), str(Path(__file__)))
    assert ingested.returncode == 1  # the .py file is refused, the .txt ingested
    assert "ingested coffee.txt" in flat(ingested.stdout) and "unsupported file type .py" in flat(ingested.stdout)
    asked = run("ask", "notes", "In which city did the first coffeehouse in England open?", "--mode", "rag")
    assert asked.returncode == 0, asked.stderr
    assert "coffee.txt, p. 1" in flat(asked.stdout) and "prompt tokens" in flat(asked.stdout)
    missing = run("ask", "nowhere", "why?")
    assert missing.returncode == 2 and "no collection named 'nowhere'" in flat(missing.stderr)
