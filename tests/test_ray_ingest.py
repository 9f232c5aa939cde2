"""Ingestion on Ray (issue 14, item 6): a local Ray cluster started by the test derives a folder's
documents on worker actors and the driver writes them; the collection equals the local engine's —
same chunks, byte-identical embeddings and summary vectors; a worker killed mid-document is restarted
and its document derived again, nothing half-written; unknown engine and Ray missing: clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from model.errors import InvalidInputError

ray = pytest.importorskip("ray", reason="Ray is not installed (`pip install -e .[ray]`)")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def folder(tmp_path, pdf_factory):
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf_factory("docs/lighthouses.pdf", [f"The {n} lighthouse was lit in {1700 + 7 * n} by keeper number {n}. " * 6
                                          for n in range(4)])
    (docs / "bees.txt").write_text("Honeybees dance to show where the nectar is. " * 30)
    (docs / "notes.md").write_text("# Notes\n\n| Region | 2023 | 2022 |\n| --- | --- | --- |\n| Europe | 1,204 | 1,130 |\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    return docs


def _contents(service, name):
    """Per file: its pages and chunks (text, spans), the chunks' embeddings and summary vectors, as bytes."""
    from sqlalchemy import select

    from indexing.catalog import Chunk, Document, Page

    row = service.collection_row(name)
    index = service.index(row)
    out = {}
    with service.sessions() as session:
        for doc in session.scalars(select(Document).where(Document.collection_id == row.id)):
            pages = list(session.scalars(select(Page.text).where(Page.document_id == doc.id).order_by(Page.page_no)))
            chunks = session.scalars(select(Chunk).where(Chunk.document_id == doc.id).order_by(Chunk.ordinal)).all()
            vectors = index.summaries.get([c.summary_row for c in chunks]) if chunks else np.zeros(0)
            out[doc.filename] = (doc.status, doc.content_hash, doc.error is not None, pages,
                                 [(c.ordinal, c.text, c.char_start, c.char_end, c.page_start, c.page_end) for c in chunks],
                                 [c.embedding for c in chunks], vectors.tobytes())
    return out


def _deriver(service, settings, tiny_folder, **kw):
    from tests.fakes import TinyDeriver

    row = service.collection_row("ray")
    return TinyDeriver(str(tiny_folder), row.chunk_tokens, row.chunk_overlap, settings.summary_tokens, **kw)


def _ray_ingest(service, paths, **options):
    from app.core.ray_ingest import ray_ingest
    from indexing.pipeline import Pipeline

    row = service.collection_row("ray")
    return ray_ingest(service.settings, Pipeline(service.index(row)), row, paths, **options)


def test_a_ray_cluster_ingests_a_folder_like_the_local_engine(local_ray, service, settings, tiny_folder, folder):
    service.create_collection("local")
    service.create_collection("ray")
    local = service.ingest("local", [folder])
    remote = _ray_ingest(service, [folder], make_deriver=_deriver(service, settings, tiny_folder))
    assert [(r.path, r.status, r.n_chunks, r.n_pages) for r in remote] == [(r.path, r.status, r.n_chunks, r.n_pages) for r in local]
    assert [r.status for r in remote] == ["ingested", "failed", "ingested", "ingested"]  # bees, broken, lighthouses, notes
    assert remote[1].error == local[1].error and "corrupt or unreadable PDF" in remote[1].error
    assert _contents(service, "ray") == _contents(service, "local")  # byte-identical vectors
    assert service.check_collection("ray") == []
    # again: every ready file is skipped before any worker starts
    again = _ray_ingest(service, [folder], make_deriver=_deriver(service, settings, tiny_folder))
    assert [r.status for r in again] == ["skipped", "failed", "skipped", "skipped"]
    # and questions find the same chunks in both
    question = "When was the lighthouse lit?"
    assert [c.snippet for c, _ in service.retrieve("ray", question, top_k=3)] == \
        [c.snippet for c, _ in service.retrieve("local", question, top_k=3)]


def test_a_worker_killed_mid_document_is_restarted_and_nothing_half_written(local_ray, service, settings, tiny_folder,
                                                                           folder, tmp_path):
    service.create_collection("local")
    service.create_collection("ray")
    service.ingest("local", [folder])
    service.settings.ray_workers = 1  # one worker: it dies, is restarted, and derives every document
    marker = tmp_path / "killed"
    results = _ray_ingest(service, [folder],
                         make_deriver=_deriver(service, settings, tiny_folder, kill_marker=str(marker)))
    assert marker.exists()  # a worker did die mid-document
    assert [r.status for r in results] == ["ingested", "failed", "ingested", "ingested"]
    assert _contents(service, "ray") == _contents(service, "local") and service.check_collection("ray") == []


def test_bad_engine_and_missing_ray_are_clear_errors(service, folder, monkeypatch):
    import builtins

    service.create_collection("c")
    with pytest.raises(InvalidInputError, match="unknown ingestion engine 'spark'"):
        service.ingest("c", [folder], engine="spark")
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(InvalidInputError, match=r"pip install -e \.\[ray\]"):
        service.ingest("c", [folder], engine="ray")
    assert service.list_documents("c") == []  # nothing stored
