"""The service layer: everything the CLI, the web UI and the llama-index adapter call.

Models, embedders and collection indexes load once per service and are shared between threads.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.answerers import Answerer, AnswerStream
from app.core.answering import Answering
from app.core.chats import Conversations
from app.core.citations import Citation
from app.config import COLLECTION_NAME, ENGINES, MAX_QUESTION_CHARS, Engine, Mode, Settings, check_top_k
from app.core.infos import CollectionInfo, DocumentInfo
from app.core.model_loading import LoadedModels, make_deriver
from app.core.originals import OriginalStore
from indexing import catalog_queries as cq
from indexing.catalog import Collection, open_catalog
from model.errors import ConflictError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from app.core.page_images import PageImage
    from indexing.collection_index import CollectionIndex
    from indexing.embedder import Embedder
    from indexing.pipeline import Deriver, IngestResult, ProgressCallback
    from indexing.rebuild import RebuildResult
    from indexing.rerank import Reranker
    from model.compressor import Compressor
    from model.loading import Decoder
    from model.registry import ModelStatus

log = logging.getLogger(__name__)

NAME_RE = re.compile(COLLECTION_NAME)


class LlocoService(LoadedModels, Conversations, Answering):
    """Collections, ingestion, questions and models, over one settings object.

    ``decoder``, ``embedder``, ``compressor`` and ``reranker`` may be given (tests inject tiny or fake
    ones); otherwise they load on first use from the settings.
    """

    def __init__(self, settings: Settings | None = None, *, decoder: Decoder | None = None,
                 embedder: Embedder | None = None, compressor: Compressor | None = None,
                 reranker: Reranker | None = None) -> None:
        super().__init__(settings or Settings(), decoder=decoder, embedder=embedder, compressor=compressor,
                         reranker=reranker)
        self.settings.home.mkdir(parents=True, exist_ok=True)
        self.sessions = open_catalog(self.settings.resolved_database_url)
        self.originals = OriginalStore(self.settings.originals_dir)  # PDFs' bytes, for page images
        self._indexes: dict[int, CollectionIndex] = {}

    # Models (loaded on first use: app.core.model_loading.LoadedModels) -----------------------------
    def models(self) -> list[ModelStatus]:
        from model.registry import list_models

        return list_models(self.settings.resolved_model_cache)

    # Collections ----------------------------------------------------------------------------
    def create_collection(self, name: str) -> CollectionInfo:
        """A new empty collection built with the current decoder, embedder, compressor and chunking."""
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise InvalidInputError(f"invalid collection name {name!r}: use letters, digits, '_', '-', '.' (at most 100)")
        s, compressor = self.settings, self.compressor
        row = Collection(name=name, decoder=s.decoder, embedder=s.embedder, compressor=compressor.ident,
                         kappa=compressor.kappa, chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap,
                         embed_dim=self.embedder.dim, hidden_size=self.decoder.hidden_size)
        if not cq.insert_collection(self.sessions, row):
            raise ConflictError(f"collection {name!r} already exists")
        return self.get_collection(name)

    def collection_row(self, name: str) -> Collection:
        """The collection's catalog row (NotFoundError when there is none)."""
        return cq.collection_row(self.sessions, name)

    def list_collections(self) -> list[CollectionInfo]:
        infos = []
        for name in cq.collection_names(self.sessions):
            with contextlib.suppress(NotFoundError):  # deleted (by another process) while this one listed
                infos.append(self.get_collection(name))
        return infos

    def get_collection(self, name: str) -> CollectionInfo:
        row = self.collection_row(name)
        counts, n_chunks = cq.collection_counts(self.sessions, row.id)
        return CollectionInfo(row.id, row.name, row.created_at, row.decoder, row.embedder, row.compressor, row.kappa,
                              row.chunk_tokens, row.chunk_overlap, row.adapter_path, counts.get("ready", (0, 0))[0],
                              counts.get("failed", (0, 0))[0], n_chunks, counts.get("ready", (0, 0))[1])

    def delete_collection(self, name: str) -> None:
        row = self.collection_row(name)
        index = self.index(row)
        with index.lock:
            hashes = cq.delete_collection_rows(self.sessions, row.id)  # its documents and chats cascade
        index.destroy()
        self._indexes.pop(row.id, None)
        self._release_originals(hashes)

    def set_adapter(self, name: str, adapter: Path | None) -> None:
        """Attach a LoRA adapter folder to a collection (used for its lloco-mode questions), or detach."""
        from model.loading import check_adapter

        row = self.collection_row(name)
        if adapter is not None:
            adapter = self.settings.refuse_state(adapter, "an adapter folder")
        checked = None if adapter is None else check_adapter(adapter, self.decoder.base_model)  # before anything is stored
        cq.set_adapter_path(self.sessions, row.id, str(checked) if checked else None)

    def index(self, row: Collection) -> CollectionIndex:
        """The collection's FAISS, summary and lexical stores (one per collection, kept open; reopened
        when another process rebuilt it)."""
        from indexing.collection_index import CollectionIndex

        with self._lock:
            cached = self._indexes.get(row.id)
            if cached is None or cached.summary_file != row.summary_file:  # new, or rebuilt by another process
                self._indexes[row.id] = CollectionIndex(self.sessions, row, self.settings.collection_dir(row.id),
                                                        ann_threshold=self.settings.ann_threshold)
            return self._indexes[row.id]

    def check_collection(self, name: str) -> list[str]:
        """Open a collection (repairing what SQL can repair: a FAISS index out of step) and list
        where its catalog rows, FAISS index and summary vectors still disagree; [] when consistent."""
        return self.index(self.collection_row(name)).problems()

    def outdated_models(self, name: str) -> list[str]:
        """What a collection was built with that the service no longer uses, e.g. "compressor 'a' (now 'b')";
        empty when its vectors are usable. A collection with any needs `rebuild_collection` first.
        Loads no model (the launcher asks before starting the web app)."""
        return self._model_diff(self.collection_row(name))

    def _model_diff(self, row: Collection) -> list[str]:
        s = self.settings
        wanted = {"decoder": row.decoder, "embedder": row.embedder, "compressor": row.compressor}
        have = {"decoder": s.decoder, "embedder": s.embedder, "compressor": self.compressor_ident}
        return [f"{k} {wanted[k]!r} (now {have[k]!r})" for k in wanted if wanted[k] != have[k]]

    def _check_models(self, row: Collection) -> None:
        """Vectors made by other models cannot be mixed with this service's: refuse, precisely."""
        diff = self._model_diff(row)
        if diff:
            raise InvalidInputError(f"collection {row.name!r} was built with " + ", ".join(diff)
                                    + ": use the same settings, or rebuild it with `lloco collections rebuild`")

    # Documents ------------------------------------------------------------------------------
    def ingest(self, name: str, paths: list[Path], *, progress: ProgressCallback | None = None,
               engine: Engine = "local") -> list[IngestResult]:
        """Ingest files and folders into a collection; bad files are reported, good ones indexed.
        ``engine``: 'local' (this process) or 'ray' (documents derived on a Ray cluster's workers, written
        here: :mod:`app.core.ray_ingest`)."""
        from indexing.pipeline import Pipeline

        if engine not in ENGINES:
            raise InvalidInputError(f"unknown ingestion engine {engine!r}: use one of {', '.join(ENGINES)}")
        row = self.collection_row(name)
        self._check_models(row)
        if not paths:
            raise InvalidInputError("no files given to ingest")
        files, refused = self._ingestible(paths)
        if engine == "ray":
            from app.core.ray_ingest import ray_ingest  # Ray: imported only when asked for

            results = ray_ingest(self.settings, Pipeline(self.index(row)), row, files, progress=progress)
        else:
            results = Pipeline(self.index(row), self.deriver(row)).ingest(files, progress=progress)
        self._keep_originals(results)
        return refused + results

    def _ingestible(self, paths: list[Path]) -> tuple[list[Path], list[IngestResult]]:
        """The files to ingest (folders expanded) and a failed result for each file of the home's own
        state found in a folder; one named outright refuses the whole request (nothing is opened:
        see :meth:`Settings.home_state`). Uploads in flight are what an upload's job ingests."""
        from indexing.loaders import expand_paths
        from indexing.pipeline import IngestResult

        home = self.settings.home.resolve()
        for path in (Path(p).resolve() for p in paths):  # a folder above the home: its state is left out below
            if path == home or not home.is_relative_to(path):
                self.settings.refuse_state(path, "a file or folder to ingest", uploads=True)
        files, refused = [], []
        for file in expand_paths([Path(p) for p in paths]):
            try:
                self.settings.refuse_state(file, "a file to ingest", uploads=True)
                files.append(file)
            except InvalidInputError:
                state = self.settings.home_state(file)
                refused.append(IngestResult(str(file), "failed", error=f"{file.name}: {state}; not ingested"))
        return files, refused

    def deriver(self, row: Collection) -> Deriver:
        """How this process turns a file into a collection's chunks and vectors (its models, the
        collection's chunking, the settings' limits)."""
        return make_deriver(self.settings, embedder=self.embedder, compressor=self.compressor,
                            encode=self.decoder.encode, chunk_tokens=row.chunk_tokens, chunk_overlap=row.chunk_overlap)

    def _keep_originals(self, results: list[IngestResult]) -> None:
        """Keep each ingested PDF's bytes (page images need them); a failure only costs the images."""
        paths = {r.document_id: Path(r.path) for r in results if r.status != "failed" and r.document_id is not None}
        hashes = cq.content_hashes(self.sessions, list(paths))
        for doc_id, path in paths.items():
            try:
                self.originals.keep(path, hashes[doc_id])
            except (OSError, KeyError) as exc:
                log.warning("could not keep the original of %s: %s", path, exc)

    def _release_originals(self, hashes: set[str]) -> None:
        """Remove the kept files of these content hashes that no document refers to any more."""
        for content_hash in hashes - cq.hashes_in_use(self.sessions, hashes):
            self.originals.discard(content_hash)

    def rebuild_collection(self, name: str, *, progress: ProgressCallback | None = None) -> RebuildResult:
        """Re-chunk, re-embed and re-compress a collection with the current models and settings."""
        from indexing.rebuild import rebuild_collection

        row = self.collection_row(name)
        s, compressor = self.settings, self.compressor
        target = Collection(id=row.id, name=row.name, decoder=s.decoder, embedder=s.embedder, compressor=compressor.ident,
                            kappa=compressor.kappa, chunk_tokens=s.chunk_tokens, chunk_overlap=s.chunk_overlap,
                            embed_dim=self.embedder.dim, hidden_size=self.decoder.hidden_size)
        old = self._indexes.get(row.id)
        with old.lock if old else contextlib.nullcontext():
            index, result = rebuild_collection(
                self.sessions, target, self.settings.collection_dir(row.id), embedder=self.embedder,
                compressor=compressor, encode=self.decoder.encode, embed_batch_size=s.embed_batch_size,
                compress_batch_size=s.compress_batch_size, progress=progress, ann_threshold=s.ann_threshold)
            with self._lock:
                self._indexes[row.id] = index
        return result

    def list_documents(self, name: str) -> list[DocumentInfo]:
        row = self.collection_row(name)
        return [DocumentInfo(d.id, d.filename, d.content_hash, d.status, d.error, d.n_pages, n_chunks, d.size_bytes,
                             d.created_at) for d, n_chunks in cq.documents_with_chunks(self.sessions, row.id)]

    def find_document(self, name: str, document: str | int) -> DocumentInfo:
        """The one document of a collection named by its id, file name or content-hash prefix (>= 8)."""
        matches = [d for d in self.list_documents(name) if str(document) in (str(d.id), d.filename)
                   or (len(str(document)) >= 8 and d.content_hash.startswith(str(document)))]
        if not matches:
            raise NotFoundError(f"no document {document!r} in collection {name!r} (see `lloco docs list {name}`)")
        if len(matches) > 1:
            raise InvalidInputError(f"{document!r} matches {len(matches)} documents in {name!r}: give its id")
        return matches[0]

    def delete_document(self, name: str, document: str | int) -> DocumentInfo:
        """Delete a document (by id, file name or content-hash prefix) with its chunks and vectors."""
        doc = self.find_document(name, document)
        self.index(self.collection_row(name)).delete_document(doc.id)
        self._release_originals({doc.content_hash})
        return doc

    def document_collection(self, document_id: int) -> str:
        """The name of the collection a document belongs to."""
        name = cq.collection_of_document(self.sessions, document_id)
        if name is None:
            raise NotFoundError(f"no document #{document_id} (was it deleted?)")
        return name

    def document_file(self, document_id: int) -> Path | None:
        """The original file of a ready PDF document (kept under the home), or None."""
        doc = cq.document_row(self.sessions, document_id)
        if doc is None or doc.status != "ready" or not doc.filename.lower().endswith(".pdf"):
            return None
        path = self.originals.find(doc.content_hash, fallback=doc.source_path)
        if path is not None and not path.is_relative_to(self.originals.root):  # ingested before originals were kept
            with contextlib.suppress(OSError):
                path = self.originals.keep(path, doc.content_hash) or path
        return path

    def citation_pages(self, citation: Citation, *, scale: float = 1.5) -> list[PageImage]:
        """The cited PDF page(s) as images with the snippet highlighted; [] for text documents
        or a PDF whose file is gone (show the snippet instead)."""
        from app.core.page_images import render_citation

        path = self.document_file(citation.document_id)
        if path is None:
            return []
        try:
            return render_citation(path, citation, scale=scale)
        except Exception as exc:  # noqa: BLE001 - a page image is a nicety: never break the answer over it
            log.warning("could not render %s p. %s: %s", path, citation.page, exc)
            return []

    # Questions ------------------------------------------------------------------------------
    def ask(self, name: str, question: str, *, mode: Mode = "lloco", top_k: int | None = None,
            document_ids: list[int] | None = None, instruction: str | None = None,
            history: list[str] | None = None) -> AnswerStream:
        """Answer a question about a collection; iterate the stream for tokens, then read ``.answer``.

        ``document_ids`` restricts retrieval (and so full mode's document) to those documents;
        ``instruction`` replaces the prompt's default instruction; ``history``: the conversation's
        earlier questions as they were typed, oldest first: a follow-up is made standalone from them
        (the ``condense`` setting; ``answer.standalone`` says how it was asked).
        """
        question, k = self._validate_question(question, top_k)
        standalone = self.standalone_question(question, history or [])
        stream = self.answerer(name, mode, instruction=instruction).ask(standalone, top_k=k, document_ids=document_ids)
        if standalone != question:
            stream.answer.standalone = standalone
        return stream

    def standalone_question(self, question: str, history: list[str]) -> str:
        """``question`` as retrieval and the decoder will see it after the earlier questions ``history``
        (as typed, oldest first): :func:`app.core.condense.standalone`."""
        from app.core.condense import standalone
        from model.generation import complete

        return standalone(question, history, mode=self.settings.condense,
                          generate=lambda prompt: complete(self.decoder, prompt, max_new_tokens=48))

    def retrieve(self, name: str, question: str, *, top_k: int | None = None,
                 document_ids: list[int] | None = None) -> list[tuple[Citation, str]]:
        """The top-k chunks for a question, best first: (citation, full chunk text)."""
        from indexing.retrieval import Retriever

        question, k = self._validate_question(question, top_k)
        row = self.collection_row(name)
        self._check_models(row)  # the question must be embedded by the embedder the collection was built with
        hits = Retriever(self.sessions, self.index(row), self.embedder, self.settings.retrieval, self.reranker).search(
            question, k, document_ids=document_ids)
        return [(Answerer.citation(h, question), h.chunk.text) for h in hits]

    def score_continuations(self, name: str, question: str, continuations: list[str], *, mode: Mode = "lloco",
                            top_k: int | None = None, document_ids: list[int] | None = None,
                            instruction: str | None = None) -> list[float]:
        """Sum of log-probabilities of each continuation text right after the answer prompt that
        :meth:`ask` would build (same retrieval, contexts, instruction and adapter)."""
        from model.generation import continuation_logprobs

        question, k = self._validate_question(question, top_k)
        answerer = self.answerer(name, mode, instruction=instruction)
        prepared = answerer.prepare(question, top_k=k, document_ids=document_ids)
        ids = [self.decoder.encode(c) for c in continuations]
        return continuation_logprobs(self.decoder, prepared.embeds, ids, adapter=answerer.adapter)

    def _validate_question(self, question: str, top_k: int | None) -> tuple[str, int]:
        from indexing.loaders import strip_control

        question = strip_control(question or "")
        if not question.strip():
            raise InvalidInputError("the question is empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidInputError(f"the question is too long ({len(question):,} characters): at most "
                                    f"{MAX_QUESTION_CHARS:,}; put long text into a document instead")
        return question.strip(), check_top_k(self.settings.top_k if top_k is None else top_k)
