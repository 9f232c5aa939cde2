"""One typed settings object for lloco.

Values come, in increasing priority, from the field defaults, an optional TOML file
(``$LLOCO_CONFIG`` or ``<home>/lloco.toml``), ``LLOCO_*`` environment variables and finally
explicit keyword arguments (which is how CLI flags map onto fields).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from model.errors import InvalidInputError
from model.gguf_export import GgufType

# lloco: summary vectors (+ question-relevant sentences as text within expand_tokens);
# lloco-pure: summary vectors only; rag: chunk text; rag+reader: chunk text read with a reader LoRA
# (the control for "is lloco's gain the fine-tune's?"); full: the whole document
Mode = Literal["lloco", "lloco-pure", "rag", "rag+reader", "full"]
DeviceName = Literal["auto", "cpu", "cuda", "mps"]
DtypeName = Literal["auto", "bfloat16", "float16", "float32"]
ExpandScoring = Literal["lexical", "hybrid"]
OnDoubt = Literal["off", "expand", "rag", "quote"]  # lloco's second look (app.core.second_look)
Retrieval = Literal["dense", "bm25", "hybrid"]  # = indexing.retrieval.RetrievalMode
CondenseMode = Literal["rule", "decoder", "off"]  # = app.core.condense.CondenseMode
Engine = Literal["local", "ray"]  # where ingestion derives documents (app.core.ray_ingest)
AnswerEngine = Literal["transformers", "llama-cpp"]  # what generates answers (model.generation, model.llamacpp)
ENGINES: tuple[Engine, ...] = ("local", "ray")
MODES: tuple[Mode, ...] = ("lloco", "lloco-pure", "rag", "rag+reader", "full")
COMPARED_MODES: tuple[Mode, ...] = ("lloco", "lloco-pure", "rag")  # what Compare and an API evaluation run ask by default
EVAL_MODES: tuple[Mode, ...] = ("lloco", "lloco-pure", "rag", "full")  # `lloco eval run`'s default (rag+reader on request)
TOP_K_MAX = 100  # chunks one question may retrieve: the one range every door checks (check_top_k, TopK)
TopK = Annotated[int, Interval(ge=1, le=TOP_K_MAX)]
EXPAND_TOKENS = 128  # default expansion budget, chosen by measurement (docs/RESULTS.md, section 5)
COLLECTION_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"  # letters, digits, '_', '-', '.'; at most 100
QUESTION_PATTERN = r"[^\s\x00-\x1f\x7f-\x9f]"  # a question holds one character that is neither space nor control
MAX_QUESTION_CHARS = 4000  # a longer "question" is a pasted document: refused before it costs a forward pass
EVAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "eval-data"  # the evaluation datasets beside the repo


def as_path(value: str | Path) -> Path:
    """A path a user gave, ``~`` expanded; InvalidInputError for one no file can have (a NUL in it)."""
    if "\x00" in str(value):
        raise InvalidInputError("a path may not contain a NUL character")
    return Path(value).expanduser()


def check_top_k(k: int, *, what: str = "top-k") -> int:
    """``k`` if it is a valid number of chunks to retrieve, else InvalidInputError."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= TOP_K_MAX:
        raise InvalidInputError(f"{what} must be between 1 and {TOP_K_MAX}, got {k}")
    return k


def default_home() -> Path:
    """The per-user data folder (e.g. ``~/.local/share/lloco``)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("lloco", appauthor=False))


class Settings(BaseSettings):
    """Every knob of lloco, each with its help text (shown by ``lloco config``)."""

    model_config = SettingsConfigDict(env_prefix="LLOCO_", extra="forbid", validate_default=True)

    home: Path = Field(default_factory=default_home, description="Folder holding all state: database, indexes, summary stores, adapters.")
    database_url: str | None = Field(None, description="SQLAlchemy URL of the catalog; default: SQLite file <home>/lloco.db. PostgreSQL: postgresql+psycopg://user:pw@host/db")
    model_cache: Path | None = Field(None, description="Folder for converted model weights (GGUF dequantized to safetensors); default <home>/models.")
    decoder: str = Field("smollm2-135m", description="Decoder: a registry name (smollm2-135m, qwen2.5-0.5b) or a local Hugging Face folder.")
    tokenizer: Path | None = Field(None, description="Tokenizer folder, when the decoder folder has none (e.g. Llama-2-7b-chat's for an AutoCompressor checkpoint).")
    embedder: str = Field("minilm-l6", description="Retrieval embedder: a registry name (minilm-l6) or a local sentence-transformers folder.")
    compressor: str = Field("default", description="Compressor checkpoint folder, 'default' (the shipped one if present, else untrained) or 'untrained'.")
    adapter: str | None = Field(None, description="Reader LoRA adapter folder for lloco mode; default: the shipped reader adapter if present.")
    rag_adapter: str | None = Field(None, description="LoRA adapter folder for mode rag+reader (plain RAG read by a fine-tuned reader); default: the adapter lloco mode reads with.")
    chunk_tokens: int = Field(256, ge=16, le=8192, description="Target chunk size in decoder tokens.")
    chunk_overlap: int = Field(32, ge=0, le=4096, description="Token overlap between consecutive chunks.")
    pdf_tables: bool = Field(True, description="Ingestion: PDF pages that look tabular (several lines with two or more figures) are read again from their words' positions and their tables written as Markdown rows, each figure with its column header ('| Net sales | 2019: $16,865.2 | 2018: $15,740.4 |'), kept whole with their caption in chunks of their own (about 0.4 s a such page). Off: pypdf's text only.")
    summary_tokens: int = Field(8, ge=1, le=512, description="kappa: summary vectors per chunk (256 tokens / 8 = 32x compression).")
    retrieval: Retrieval = Field("dense", description="How chunks are found for a question: 'dense' (the embedder's vectors in FAISS), 'bm25' (exact words and numbers, a lexical index kept in the catalog) or 'hybrid' (both, fused by reciprocal rank).")
    reranker: str | None = Field(None, description="A cross-encoder that reorders the first stage's best rerank_pool chunks before the top_k are kept: a local sentence-transformers CrossEncoder folder (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2, downloaded) or, with network, a hub name. None by default: no cross-encoder installs offline here.")
    rerank_pool: int = Field(20, ge=1, le=200, description="With a reranker: how many chunks the first stage (the retrieval setting) hands it per question.")
    condense: CondenseMode = Field("rule", description="Follow-up questions in a conversation ('and in 2022?') are made standalone before retrieval: 'rule' (a year, quarter, number or name takes the place of the same in the previous question; pronouns get its subject), 'decoder' (the decoder rewrites it; the rule's rewrite when the decoder's does not look like a question) or 'off'.")
    ann_threshold: int | None = Field(100_000, ge=1, description="A collection's FAISS index becomes approximate (IVF with 8-bit vectors, trained on the stored embeddings; deletes stay real) once it holds this many chunks; below it search is exact. None: always exact.")
    top_k: int = Field(4, ge=1, le=TOP_K_MAX, description="Chunks retrieved per question.")
    expand_tokens: int = Field(EXPAND_TOKENS, ge=0, le=2048, description="lloco mode: token budget for the question-relevant sentences of the retrieved chunks, put in the prompt as text beside their summary vectors (selective expansion; 0 = summary vectors only, as mode lloco-pure).")
    expand_share: float = Field(0.125, gt=0, le=1, description="lloco mode: the expansion stops where the prompt's context (summary vectors + sentences) would exceed this share of the retrieved chunks' text tokens, what plain RAG reads (1/8 by default).")
    expand_scoring: ExpandScoring = Field("lexical", description="lloco mode: how expansion sentences are chosen: 'lexical' (question words weighted by rarity, as citation snippets) or 'hybrid' (plus each sentence's cosine with the question under the retrieval embedder).")
    lloco_extra_chunks: int = Field(0, ge=0, le=96, description="lloco mode: chunks retrieved as summary vectors beyond top_k (kappa tokens each); expansion sentences still come from the top_k best.")
    merge_reader: int = Field(0, ge=0, le=8, description="lloco and rag+reader modes: read with a copy of the decoder that has the reader adapter merged in, this many copies kept (one per adapter in use; ~270 MB each in bfloat16, ~540 MB in float32). Measured in bfloat16 on every question of three dev sets (RESULTS §12): the same answers' quality, lloco answers 1.37x and 1.20x faster on two, no faster on the third. 0 (default): peft switches adapters on the one model.")
    prefix_cache: bool = Field(False, description="Prefill the prompt's fixed start (chat template, system prompt, instruction) once per adapter and reuse its KV cache for every question. Off by default: measured on the demo (SmolLM2, CPU; float32, then bfloat16 with the session-21 generation loop), time to first token x0.94 in lloco mode and x1.10 / x1.06 in rag mode, and some rag answers differ (the prefix computed apart rounds differently, and greedy decoding can flip).")
    answer_engine: AnswerEngine = Field("transformers", description="What generates answers: 'transformers' (the decoder as loaded, any device) or 'llama-cpp' (llama.cpp on the CPU through llama-cpp-python, an optional extra: `make llamacpp`; the decoder, or a copy with the reader merged in, is written once as a GGUF file under the model cache). Retrieval, prompts, compression and option scoring are the same for both; see docs/RESULTS.md §12 for speed and answer agreement.")
    gguf_type: GgufType = Field("f32", description="answer_engine=llama-cpp: the weights' type in its GGUF files: f32 (answers as transformers' float32), f16, or q8_0 (8-bit, fastest; some answers differ).")
    no_repeat_ngram: int = Field(3, ge=0, le=16, description="Every mode: no n-gram of the answer's tokens generated twice (3: the standard guard against a greedy decoder's loops, e.g. RAG's 'PepsiCo, Inc. and Subsidiaries:' repeated to the length cap); 0: off.")
    on_doubt: OnDoubt = Field("off", description="lloco modes: when an answer is not marked supported, answer again and keep whichever answer's confidence is higher — 'expand' (lloco with 4x the expansion budget), 'rag' (the same chunks as text, plain RAG), 'quote' (RAG whose every token continues a span of those chunks: a verbatim figure or name); the first answer streams, a kept second one replaces it. 'off': one answer.")
    abstain: bool = Field(True, description="Decline an answer whose confidence is below its collection's decline threshold, and mark it supported only at or above the supported one (both chosen per collection and mode by `lloco collections calibrate`); off: every answer is shown with its claims' verdicts, none declined. A collection not calibrated declines only when nothing was retrieved and marks none supported.")
    supported_precision: float = Field(0.6, gt=0, le=1, description="Calibration target: the answer recall wanted of the answers marked supported, on the collection's synthetic questions (`lloco collections calibrate`).")
    decline_accuracy: float = Field(0.05, ge=0, lt=1, description="Calibration target: decline below the highest confidence under which at most this share of the collection's synthetic answers were right.")
    confidence_model: str | None = Field(None, description="JSON file of per-mode answer-confidence models (app.core.confidence); default: the one shipped for the decoder, else a prior.")
    max_new_tokens: int = Field(96, ge=1, le=4096, description="Longest generated answer, in tokens.")
    max_context_tokens: int | None = Field(None, ge=256, description="Prompt window for 'full' mode; default: the decoder's own maximum.")
    compress_batch_size: int = Field(8, ge=1, le=1024, description="Chunks compressed per forward pass at ingestion.")
    embed_batch_size: int = Field(32, ge=1, le=4096, description="Chunks embedded per batch at ingestion.")
    max_file_mb: float = Field(200.0, gt=0, description="Files larger than this are refused at ingestion.")
    max_upload_mb: float = Field(500.0, gt=0, description="API: an upload request (all its files) larger than this is refused with 413 while it streams.")
    ray_address: str | None = Field(None, description="`lloco ingest --engine ray`: the Ray cluster to use ('auto': the one this machine belongs to; 'ray://head:10001': a remote head); default: a local Ray started for the ingest.")
    ray_workers: int = Field(2, ge=1, le=1024, description="`lloco ingest --engine ray`: worker actors deriving documents in parallel (each loads the models once).")
    ray_worker_threads: int = Field(1, ge=1, le=256, description="`lloco ingest --engine ray`: CPU threads (and Ray CPUs) per worker.")
    api_host: str = Field("127.0.0.1", description="Address `lloco api` listens on (127.0.0.1: this machine only; 0.0.0.0: every interface).")
    api_port: int = Field(8000, ge=1, le=65535, description="Port `lloco api` listens on.")
    server_roots: list[Path] = Field(default_factory=lambda: [EVAL_DATA], description="Web app and API: the folders under which admins may name server-side paths (adapter folders, evaluation data); the home is always one. The CLI may use any path.")
    embedded_worker: bool = Field(True, description="Web app and API server: run queued jobs (ingestion, rebuild, training, evaluation) in a worker thread of the server, one at a time. False: only queue them, for separate `lloco worker` processes to run.")
    session_hours: float = Field(8.0, gt=0, le=24 * 30, description="Web app: a sign-in lasts this long; then the user signs in again.")
    device: DeviceName = Field("auto", description="Torch device: auto picks cuda, then mps, then cpu.")
    dtype: DtypeName = Field("auto", description="Torch dtype: auto picks bfloat16 where the CPU/GPU supports it, else float32.")

    @field_validator("home", "model_cache", "tokenizer", mode="after")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_tokens ({self.chunk_tokens})")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls))

    # Derived paths -------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'lloco.db'}"

    @property
    def resolved_server_roots(self) -> list[Path]:
        return [self.home, *self.server_roots]

    @property
    def resolved_model_cache(self) -> Path:
        return self.model_cache or self.home / "models"

    @property
    def originals_dir(self) -> Path:
        """Kept original PDFs, by content hash (see :mod:`app.core.originals`)."""
        return self.home / "originals"

    @property
    def max_file_bytes(self) -> int:
        """Files larger than this are refused at ingestion (the max_file_mb setting in bytes)."""
        return int(self.max_file_mb * 2**20)

    @property
    def run_file(self) -> Path:
        """A running `lloco api`'s pid, URL and local token (:mod:`app.api.local`)."""
        return self.home / "api-server.json"

    @property
    def uploads_dir(self) -> Path:
        """Uploaded files waiting for (or under) their ingestion job; removed when the job ends."""
        return self.home / "uploads"

    def collection_dir(self, collection_id: int) -> Path:
        """Derived files of one collection (FAISS index, summary store)."""
        return self.home / "collections" / str(collection_id)

    @property
    def catalog_file(self) -> Path | None:
        """The SQLite catalog's file (None for a server database such as PostgreSQL, or in memory)."""
        url = self.resolved_database_url
        if not url.startswith("sqlite") or "///" not in url:
            return None
        name = url.split("///", 1)[1].split("?", 1)[0]
        return None if name in ("", ":memory:") else Path(name).expanduser()

    def home_state(self, path: str | Path) -> str | None:
        """What of this home's own state ``path`` is (or holds, for a folder), or None.

        The one owner of "files no user may name as input": the catalog and its SQLite side files,
        the collections' indexes and summary stores, kept originals, uploads in flight, the model
        cache, the API server's run file and the settings file. The catalog matters most: POSIX locks
        belong to a process, so a process that opens and closes *any* descriptor of the catalog file
        other than through SQLite drops SQLite's locks on it, and the next process to close its own
        connection deletes the WAL this one still writes into (issue 26; SQLite's "How To Corrupt An
        SQLite Database File", section 2.2). Only ``stat`` is used here: nothing is opened."""
        resolved = as_path(path).resolve()
        home = self.home.expanduser().resolve()
        catalog = self.catalog_file
        if catalog is not None:
            db = catalog.expanduser().resolve()
            sides = [db.with_name(db.name + suffix) for suffix in _SQLITE_SIDE_FILES]
            if resolved in sides or _same_file(resolved, sides):
                return "the catalog (its database file or SQLite's -wal, -shm and -journal files beside it)"
        if home.is_relative_to(resolved):
            return "the home folder, which holds lloco's state"
        places = {home / "collections": "the collections' indexes and summary stores",
                  self.originals_dir.resolve(): "the kept original documents",
                  self.uploads_dir.resolve(): "uploads in flight",
                  self.resolved_model_cache.expanduser().resolve(): "the model cache",
                  self.run_file.resolve(): "the API server's run file",
                  home / "lloco.toml": "the settings file"}
        collections = home / "collections"
        if resolved.is_relative_to(collections) and resolved.relative_to(collections).parts[1:2] == ("adapters",):
            return None  # <collection>/adapters/: the adapters trained for it, read as any adapter folder
        for place, what in places.items():
            if resolved.is_relative_to(place):
                return what
        if catalog is not None and catalog.expanduser().resolve().is_relative_to(resolved):
            return "a folder holding the catalog"
        return None

    def refuse_state(self, path: str | Path, what: str, *, uploads: bool = False) -> Path:
        """``path`` resolved, or InvalidInputError if it is (or holds) this home's own state
        (:meth:`home_state`): no command, request or job reads those files as input. ``uploads``: a
        file uploaded for a queued job (under :attr:`uploads_dir`) is that job's input, not state."""
        if uploads and as_path(path).resolve().is_relative_to(self.uploads_dir.resolve()):
            return as_path(path).resolve()
        if (state := self.home_state(path)) is not None:
            raise InvalidInputError(f"{what} may not be {state}: {path}")
        return as_path(path).resolve()


_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def _same_file(path: Path, files: list[Path]) -> bool:
    """Whether ``path`` is one of ``files`` by another name (a hard link, a bind mount)."""
    try:
        mine = path.stat()
    except OSError:
        return False
    for f in files:
        try:
            other = f.stat()
        except OSError:
            continue
        if (mine.st_dev, mine.st_ino) == (other.st_dev, other.st_ino):
            return True
    return False


class _TomlSource(PydanticBaseSettingsSource):
    """Reads ``$LLOCO_CONFIG`` or ``<home>/lloco.toml`` (flat keys, or under a [lloco] table)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover - unused
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get("LLOCO_CONFIG")
        if path:
            file = Path(path).expanduser()
            if not file.is_file():
                raise FileNotFoundError(f"LLOCO_CONFIG points at {file}, which is not a file")
        else:
            home = Path(os.environ.get("LLOCO_HOME") or default_home()).expanduser()
            file = home / "lloco.toml"
            if not file.is_file():
                return {}
        with file.open("rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{file}: invalid TOML: {exc}") from exc
        return dict(data.get("lloco", data))


def field_help() -> list[tuple[str, str, str]]:
    """(name, env var, help) for every setting, for docs and ``lloco config``."""
    return [(name, f"LLOCO_{name.upper()}", f.description or "") for name, f in Settings.model_fields.items()]
