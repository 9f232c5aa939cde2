"""Ingestion through the service on a tiny model: idempotence, bad files, crashes, deletion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from indexing.catalog import Chunk, Document, Page
from model.errors import NotFoundError

PAGES = ["Alpha page about lighthouses and lamps. " * 8, "Beta page about honeybees and flowers. " * 8,
         "Gamma page about tides and the moon. " * 8]


def _counts(service, name):
    cid = service.get_collection(name).id
    with service.sessions() as s:
        docs = s.scalar(select(func.count()).select_from(Document).where(Document.collection_id == cid))
        chunks = s.scalar(select(func.count()).select_from(Chunk).where(Chunk.collection_id == cid))
        pages = s.scalar(select(func.count()).select_from(Page))
    index = service.index(service.collection_row(name))
    return {"docs": docs, "chunks": chunks, "pages": pages, "faiss": index.faiss.size}


def test_ingest_pdf_keeps_pages_and_indexes_every_chunk(service, pdf_factory):
    pdf = pdf_factory("three.pdf", PAGES)
    service.create_collection("c")
    [result] = service.ingest("c", [pdf])
    assert result.status == "ingested" and result.n_pages == 3 and result.n_chunks >= 3
    counts = _counts(service, "c")
    assert counts == {"docs": 1, "chunks": result.n_chunks, "pages": 3, "faiss": result.n_chunks}
    hits = service.retrieve("c", "honeybees flowers", top_k=1)
    assert hits[0][0].page == 2 and "honeybees" in hits[0][1]
    index = service.index(service.collection_row("c"))
    with service.sessions() as s:
        rows = [r for r in s.scalars(select(Chunk.summary_row))]
    assert index.summaries.get(rows).shape == (len(rows), service.compressor.kappa, service.decoder.hidden_size)


def test_reingest_same_bytes_is_a_noop(service, pdf_factory, tmp_path):
    pdf = pdf_factory("a.pdf", PAGES)
    copy = tmp_path / "renamed.pdf"
    copy.write_bytes(pdf.read_bytes())
    service.create_collection("c")
    first = service.ingest("c", [pdf])
    before = _counts(service, "c")
    again = service.ingest("c", [pdf, copy])
    assert [r.status for r in again] == ["skipped", "skipped"]
    assert again[0].document_id == first[0].document_id
    assert _counts(service, "c") == before


def test_mixed_folder_ingests_good_files_and_records_bad_ones(service, pdf_factory, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    pdf_factory("mixed/good.pdf", PAGES[:1])
    (folder / "notes.txt").write_text("Plain notes about coffee in Yemen. " * 5)
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "fake.pdf").write_text("this is not a pdf")
    (folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 4)
    (folder / "table.docx").write_bytes(b"PK\x03\x04zip")
    service.create_collection("c")
    results = {r.path.rsplit("/", 1)[-1]: r for r in service.ingest("c", [folder])}
    assert results["good.pdf"].status == "ingested" and results["notes.txt"].status == "ingested"
    for bad in ("empty.pdf", "fake.pdf", "corrupt.pdf", "table.docx"):
        assert results[bad].status == "failed", bad
        assert bad in results[bad].error
    docs = {d.filename: d for d in service.list_documents("c")}
    assert {n for n, d in docs.items() if d.status == "failed"} == {"empty.pdf", "fake.pdf", "corrupt.pdf", "table.docx"}
    assert all(d.n_chunks == 0 and d.error for d in docs.values() if d.status == "failed")
    assert _counts(service, "c")["faiss"] == sum(d.n_chunks for d in docs.values())


def test_failed_file_can_be_fixed_and_reingested(service, tmp_path):
    bad = tmp_path / "doc.txt"
    bad.write_bytes(b"")
    service.create_collection("c")
    assert service.ingest("c", [bad])[0].status == "failed"
    bad.write_text("Now the file has words about lamps. " * 4)
    assert service.ingest("c", [bad])[0].status == "ingested"
    assert [d.status for d in service.list_documents("c")] == ["ready"]


@pytest.mark.parametrize("exc", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_crash_mid_ingest_leaves_collection_as_before(service, pdf_factory, monkeypatch, exc):
    service.create_collection("c")
    service.ingest("c", [pdf_factory("first.pdf", PAGES[:2])])
    before = _counts(service, "c")
    index = service.index(service.collection_row("c"))
    real_save = index.faiss.save

    def crash_after_faiss_write():
        real_save()  # the new vectors reached the FAISS file, then the process dies before the SQL commit
        raise exc

    monkeypatch.setattr(index.faiss, "save", crash_after_faiss_write)
    with pytest.raises(type(exc)):
        service.ingest("c", [pdf_factory("second.pdf", PAGES[2:])])
    monkeypatch.setattr(index.faiss, "save", real_save)
    assert _counts(service, "c") == before
    assert [d.filename for d in service.list_documents("c")] == ["first.pdf"]
    # a new process reopening the collection sees SQL and FAISS agree
    assert index.reconcile() is False
    assert service.ingest("c", [pdf_factory("second.pdf", PAGES[2:])])[0].status == "ingested"


def test_faiss_out_of_step_with_sql_is_rebuilt_from_sql(service, pdf_factory, settings, tiny_decoder):
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    service.create_collection("c")
    service.ingest("c", [pdf_factory("a.pdf", PAGES)])
    index = service.index(service.collection_row("c"))
    ids = sorted(index.faiss.ids())
    index.faiss.remove(ids[:2])
    index.faiss.add([999_999], np.ones((1, index.faiss.dim), dtype=np.float32) / 8)
    index.faiss.save()
    reopened = LlocoService(settings, decoder=tiny_decoder, embedder=HashEmbedder())
    assert sorted(reopened.index(reopened.collection_row("c")).faiss.ids()) == ids


def test_delete_document_removes_chunks_vectors_and_summaries(service, pdf_factory, tmp_path):
    service.create_collection("c")
    keep = service.ingest("c", [pdf_factory("keep.pdf", PAGES[:1])])[0]
    gone = service.ingest("c", [pdf_factory("gone.pdf", PAGES[1:])])[0]
    index = service.index(service.collection_row("c"))
    with service.sessions() as s:
        rows = list(s.scalars(select(Chunk.summary_row).where(Chunk.document_id == gone.document_id)))
    info = service.delete_document("c", "gone.pdf")
    assert info.id == gone.document_id
    assert [d.filename for d in service.list_documents("c")] == ["keep.pdf"]
    counts = _counts(service, "c")
    assert counts["chunks"] == counts["faiss"] == keep.n_chunks and counts["pages"] == 1
    assert not np.any(index.summaries.get(rows))  # the deleted summary vectors are zeroed on disk
    assert all(c[0].document == "keep.pdf" for c in service.retrieve("c", "honeybees flowers", top_k=5))
    with pytest.raises(NotFoundError):
        service.delete_document("c", "gone.pdf")


def test_delete_collection_removes_rows_and_files(service, pdf_factory):
    service.create_collection("c")
    service.ingest("c", [pdf_factory("a.pdf", PAGES)])
    folder = service.settings.collection_dir(service.get_collection("c").id)
    assert (folder / "faiss.index").is_file()
    service.delete_collection("c")
    assert not folder.exists()
    with pytest.raises(NotFoundError):
        service.get_collection("c")
    with service.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Chunk)) == 0
        assert s.scalar(select(func.count()).select_from(Page)) == 0


def test_progress_reports_every_stage_in_order(service, pdf_factory):
    service.create_collection("c")
    events = []
    service.ingest("c", [pdf_factory("a.pdf", PAGES)], progress=events.append)
    stages = list(dict.fromkeys(e.stage for e in events))
    assert stages == ["parse", "chunk", "embed", "compress", "index", "done"]
    assert events[-1].done == events[-1].total > 0


def test_cli_ingest_json_lists_every_file_with_its_result(service, pdf_factory, tmp_path, monkeypatch, capsys):
    import json

    from tests.cli_runner import run_cli

    service.create_collection("c")
    good = pdf_factory("good.pdf", ["The lamp was lit at dusk in 1759."])
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"not a pdf at all")
    code, stdout, _ = run_cli(monkeypatch, capsys, "ingest", "c", str(good), str(bad), "--json", service=service)
    rows = json.loads(stdout)  # nothing but the JSON on stdout: progress goes to stderr
    assert code == 1  # a file failed
    assert [(Path(r["path"]).name, r["status"]) for r in rows] == [("good.pdf", "ingested"), ("bad.pdf", "failed")]
    assert rows[0]["n_chunks"] >= 1 and rows[0]["n_pages"] == 1 and "not a PDF" in rows[1]["error"]


@pytest.mark.parametrize("prefetch", [True, False])
def test_the_next_file_is_parsed_while_the_current_one_compresses(service, pdf_factory, tmp_path, monkeypatch,
                                                                  prefetch):
    import threading

    from indexing.pipeline import Deriver, Pipeline

    folder = tmp_path / "overlap"
    folder.mkdir()
    for name, page in zip(("a.pdf", "b.pdf", "c.pdf"), PAGES, strict=True):
        pdf_factory(name, [page]).rename(folder / name)
    (folder / "d.pdf").write_bytes(b"%PDF-1.4 broken")  # a bad file parsed ahead fails as it would in its turn
    loaded = {name: threading.Event() for name in ("a.pdf", "b.pdf", "c.pdf", "d.pdf")}
    seen_next: list[bool] = []
    load, derive = Deriver.load, Deriver.derive

    def recording_load(self, path):
        try:
            return load(self, path)
        finally:
            loaded[path.name].set()

    def waiting_derive(self, doc, report=lambda *_a: None):
        names = sorted(loaded)
        following = names[names.index(doc.filename) + 1]
        # with prefetch the parse ahead sets it (a generous bound, never reached); without, nothing can
        seen_next.append(loaded[following].wait(timeout=60 if prefetch else 0.3))
        return derive(self, doc, report)

    monkeypatch.setattr(Deriver, "load", recording_load)
    monkeypatch.setattr(Deriver, "derive", waiting_derive)
    service.create_collection("c")
    row = service.collection_row("c")
    results = Pipeline(service.index(row), service.deriver(row), prefetch=prefetch).ingest([folder])
    assert [r.status for r in results] == ["ingested", "ingested", "ingested", "failed"]
    assert "PDF" in results[3].error
    assert seen_next == [prefetch] * 3  # b was parsed while a was being derived, c while b, d while c
    monkeypatch.undo()
    service.create_collection("plain")
    plain = service.ingest("plain", [folder])
    assert [r.n_chunks for r in plain] == [r.n_chunks for r in results]
    index, other = service.index(service.collection_row("c")), service.index(service.collection_row("plain"))
    with service.sessions() as s:
        rows = {cid: [r for r in s.scalars(select(Chunk.summary_row).where(Chunk.collection_id == cid)
                                           .order_by(Chunk.document_id, Chunk.ordinal))]
                for cid in (index.collection_id, other.collection_id)}
    np.testing.assert_array_equal(index.summaries.get(rows[index.collection_id]),
                                  other.summaries.get(rows[other.collection_id]))
