"""One collection used by several processes at once (issue 12, bugs 2 and 3), modelled by several
services on one home, each with its own FAISS and summary-store handles: a server sees documents
another process ingested or deleted without a restart, and concurrent ingests into one collection
leave FAISS, the summary store and SQL in agreement."""

from __future__ import annotations

import threading

import pytest

from sqlalchemy import select

from app.core.service import LlocoService
from indexing.catalog import Chunk
from indexing.faiss_store import FaissStore
from tests.fakes import HashEmbedder


@pytest.fixture
def service(any_backend_service):
    """Every test here runs on SQLite and on PostgreSQL (where a server is set)."""
    return any_backend_service


def _faiss_ids_on_disk(service, name: str) -> set[int]:
    """The chunk ids in the collection's saved FAISS file, read as is (no reconciling with SQL)."""
    info = service.get_collection(name)
    return FaissStore(service.settings.collection_dir(info.id), service.embedder.dim).ids()


def _other(service) -> LlocoService:
    """A second "process": the same settings and home, its own indexes."""
    return LlocoService(service.settings, decoder=service.decoder, embedder=HashEmbedder())


def test_a_running_server_sees_what_another_process_ingested_and_deleted(service, pdf_factory):
    server = service
    server.create_collection("c")
    server.ingest("c", [pdf_factory("lamps.pdf", ["The keeper lit the lamps every evening."])])
    assert server.ask("c", "bees honey", mode="rag", top_k=4).read().citations[0].document == "lamps.pdf"
    cli = _other(server)
    cli.ingest("c", [pdf_factory("bees.pdf", ["Honeybees dance to show the others where the honey flowers are."])])
    found = {c.document for c in server.ask("c", "honeybees dance flowers", mode="rag", top_k=4).read().citations}
    assert "bees.pdf" in found  # no restart needed
    cli.delete_document("c", "lamps.pdf")
    answer = server.ask("c", "keeper lamps evening", mode="lloco", top_k=4).read()
    assert {c.document for c in answer.citations} == {"bees.pdf"}
    with server.sessions() as session:
        assert _faiss_ids_on_disk(server, "c") == set(session.scalars(select(Chunk.id)))


def test_concurrent_ingests_into_one_collection_keep_faiss_summaries_and_sql_in_step(service, pdf_factory):
    service.create_collection("c")
    services = [service, _other(service), _other(service)]
    batches = [[pdf_factory(f"p{n}-{i}.pdf", [f"Process {n} document {i} talks about topic {n * 10 + i}. " * 6] * 2)
                for i in range(3)] for n in range(3)]
    errors: list[BaseException] = []

    def ingest(svc, pdfs):
        try:
            svc.ingest("c", pdfs)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=ingest, args=(svc, pdfs)) for svc, pdfs in zip(services, batches, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with service.sessions() as session:
        ids = set(session.scalars(select(Chunk.id)))
        rows = list(session.scalars(select(Chunk.summary_row)))
    assert ids and len(ids) == len(rows)
    assert _faiss_ids_on_disk(service, "c") == ids  # FAISS holds exactly SQL's chunks, no repair needed
    assert len(set(rows)) == len(rows)  # no two chunks share a summary row
    assert len(service.list_documents("c")) == 9
