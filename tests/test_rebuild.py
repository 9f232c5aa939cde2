"""Rebuilding a collection with new chunking / compressor settings, from the pages in SQL."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from indexing.catalog import Chunk
from model.errors import InvalidInputError

PAGES = ["Alpha page about lighthouses and lamps. " * 12, "Beta page about honeybees and flowers. " * 12]


def test_rebuild_with_new_chunking_and_kappa(service, settings, tiny_decoder, pdf_factory, tmp_path):
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    service.create_collection("c")
    service.ingest("c", [pdf_factory("a.pdf", PAGES)])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"junk")
    service.ingest("c", [bad])
    before = service.get_collection("c")

    changed = LlocoService(settings.model_copy(update={"chunk_tokens": 32, "chunk_overlap": 0, "summary_tokens": 2}),
                           decoder=tiny_decoder, embedder=HashEmbedder())
    with pytest.raises(InvalidInputError, match="rebuild"):
        changed.ask("c", "bees?")
    result = changed.rebuild_collection("c")
    after = changed.get_collection("c")
    assert (after.kappa, after.chunk_tokens, after.chunk_overlap) == (2, 32, 0)
    assert result.documents == 1 and result.chunks == after.n_chunks > before.n_chunks
    assert [d.status for d in changed.list_documents("c")] == ["ready", "failed"]  # failed rows are kept
    index = changed.index(changed.collection_row("c"))
    with changed.sessions() as s:
        chunks = s.scalars(select(Chunk).where(Chunk.collection_id == after.id).order_by(Chunk.id)).all()
    assert index.faiss.ids() == {c.id for c in chunks}
    assert [c.summary_row for c in chunks] == list(range(len(chunks)))  # the store was compacted
    vectors = index.summaries.get([c.summary_row for c in chunks])
    fresh = changed.compressor.compress([tiny_decoder.encode(c.text) for c in chunks])
    np.testing.assert_allclose(vectors.astype(np.float32), np.stack([v.numpy() for v in fresh]).astype(np.float32),
                               atol=1e-3)
    answer = changed.ask("c", "honeybees flowers", mode="lloco", top_k=2).read()
    assert answer.citations[0].page == 2


def test_rebuild_unknown_collection(service):
    from model.errors import NotFoundError

    with pytest.raises(NotFoundError):
        service.rebuild_collection("nope")


def test_cli_rebuild(service, monkeypatch, capsys, tmp_path):
    from app.cli import main as cli
    from tests.cli_runner import flat, run_cli

    monkeypatch.setattr(cli.State, "service", service)
    doc = tmp_path / "d.txt"
    doc.write_text("Lamps and lighthouses. " * 30)
    service.create_collection("c")
    service.ingest("c", [doc])
    code, out, _ = run_cli(monkeypatch, capsys, "collections", "rebuild", "c")
    assert code == 0 and "rebuilt c: 1 documents" in flat(out)
    code, _, err = run_cli(monkeypatch, capsys, "collections", "rebuild", "nope")
    assert code == 2 and "no collection named 'nope'" in flat(err)


def test_a_rebuild_killed_before_its_commit_leaves_the_collection_as_it_was(service, pdf_factory, monkeypatch):
    """Issue 12, bug 1: killed after the summary file was replaced but before the SQL commit, the
    collection used to read *shifted* summary vectors (and one chunk an IndexError)."""
    from sqlalchemy import select

    from app.core.service import LlocoService
    from indexing.catalog import Chunk
    from indexing.faiss_store import FaissStore
    from tests.fakes import HashEmbedder

    service.create_collection("c")
    service.ingest("c", [pdf_factory(f"d{i}.pdf", [f"Document {i} on topic {i}. " * 20] * 2) for i in range(3)])
    service.delete_document("c", "d0.pdf")  # its summary rows stay, zeroed: a rebuild compacts (renumbers) them

    def vectors(svc):
        index = svc.index(svc.collection_row("c"))
        with svc.sessions() as session:
            rows = session.execute(select(Chunk.id, Chunk.summary_row).order_by(Chunk.id)).all()
        return {cid: index.summary_vectors([row]).tobytes() for cid, row in rows}

    before = vectors(service)
    answer = service.ask("c", "topic 2", mode="lloco-pure", top_k=2).read()

    def killed(self):
        raise KeyboardInterrupt  # the process dies here: after the new summary file, before the commit

    monkeypatch.setattr(FaissStore, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        service.rebuild_collection("c")
    monkeypatch.undo()
    restarted = LlocoService(service.settings, decoder=service.decoder, embedder=HashEmbedder())
    assert vectors(restarted) == before  # every chunk reads its own vectors
    again = restarted.ask("c", "topic 2", mode="lloco-pure", top_k=2).read()
    assert (again.text, again.chunk_ids) == (answer.text, answer.chunk_ids)
    restarted.rebuild_collection("c")  # a rebuild that completes renumbers and cleans up
    folder = service.settings.collection_dir(service.get_collection("c").id)
    assert len(list(folder.glob("summaries*.f16"))) == 1
    assert sorted(vectors(restarted).values()) == sorted(before.values())
