"""LLoCO, plain-RAG and full-context answerers behind one template method.

``Answerer.ask`` retrieves, selects and orders chunks, asks the subclass what stands for them in
the prompt (summary vectors or text), assembles the same chat prompt, and streams from the same
decoder. The modes differ only in :meth:`Answerer.contexts` (and full mode in what it selects),
so a comparison between them is a fair A/B by construction.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from app.core.citations import Citation, make_citation
from app.config import ExpandScoring, Mode, OnDoubt
from app.core.expansion import expanded_contexts, expansion_budget
from app.core.confidence import ConfidenceModel, Thresholds
from app.core.second_look import QuoteSpans, Restart, SecondLook, in_doubt, keeps_second
from app.core.verify import Verification, judged, verification_json, verify_answer
from indexing.catalog_queries import document_page_texts
from indexing.retrieval import Hit, RetrievalMode, Retriever
from model.errors import InvalidInputError
from model.generation import GenerationStream, stream_generate
from model.prompts import DEFAULT_INSTRUCTION, Context, build_prompt, embed_prompt

if TYPE_CHECKING:
    import torch
    from sqlalchemy.orm import sessionmaker

    from indexing.collection_index import CollectionIndex
    from indexing.embedder import Embedder
    from indexing.rerank import Reranker
    from model.loading import Decoder

SEPARATOR_ALLOWANCE = 8  # tokens between two documents' contexts in full mode


@dataclass
class Answer:
    """Everything about one answer, filled in once its stream is exhausted."""

    mode: Mode
    question: str
    text: str = ""
    citations: list[Citation] = field(default_factory=list)
    prompt_tokens: int = 0
    context_tokens: int = 0  # the part of the prompt that stands for the retrieved chunks
    generated_tokens: int = 0
    retrieval_s: float = 0.0
    ttft_s: float | None = None  # time to first token, from the start of ask()
    total_s: float = 0.0
    chunk_ids: list[int] = field(default_factory=list)
    adapter: str | None = None
    standalone: str | None = None  # a follow-up as it was asked and retrieved, when rewritten (app.core.condense)
    verification: Verification | None = None  # its claims checked against the chunks' text (app.core.verify)
    verify_s: float = 0.0  # the time that check took (after total_s: the answer was shown by then)
    second_look: SecondLook | None = None  # lloco asked again when unsure (the on_doubt setting)


def answer_json(answer: Answer) -> dict:
    """The whole answer as JSON-ready data: text, citations, costs, and its verification (verdict, its
    words, claims with their evidence or what they lack, signals) — what `lloco ask --json` prints."""
    data = asdict(answer)
    if answer.verification is not None:
        data["verification"] = verification_json(answer.verification)
    return data


class AnswerStream:
    """Iterate for the answer's text pieces; ``.answer`` is complete after the last piece."""

    def __init__(self, pieces: GenerationStream, answer: Answer, started: float,
                 check: Callable[[str, GenerationStream], Verification] | None = None,
                 second: tuple[str, Callable[[], AnswerStream]] | None = None, doubt: float | None = None) -> None:
        self._pieces, self.answer, self._started, self._check = pieces, answer, started, check
        self._second = second  # (kind, the second look's stream) when an answer in doubt is asked again
        self._doubt = doubt  # the collection's doubt threshold (None: every answer not marked supported)

    def __iter__(self) -> Iterator[str]:
        text = []
        for piece in self._pieces:
            if self.answer.ttft_s is None and self._pieces.first_token_at is not None:
                self.answer.ttft_s = self._pieces.first_token_at - self._started
            text.append(piece)
            yield piece
        self.answer.text = "".join(text).strip()
        self.answer.generated_tokens = self._pieces.n_tokens
        if self.answer.ttft_s is None and self._pieces.first_token_at is not None:  # an empty answer: its end token
            self.answer.ttft_s = self._pieces.first_token_at - self._started
        self.answer.total_s = time.perf_counter() - self._started
        if self._check is not None:
            self.answer.verification = self._check(self.answer.text, self._pieces)
            self.answer.verify_s = time.perf_counter() - self._started - self.answer.total_s
        if self._second is not None and in_doubt(self.answer.verification, self._doubt):
            yield from self._look_again(*self._second)

    def _look_again(self, kind: str, ask_again: Callable[[], AnswerStream]) -> Iterator[str]:
        """Answer again; keep whichever answer has the higher confidence, yielding :class:`Restart` and
        the second text when it is the second. ``total_s`` then runs to the shown answer."""
        first, alt = self.answer, ask_again().read()
        kept = keeps_second(first.verification, alt.verification)
        fv, av = first.verification, alt.verification
        look = SecondLook(kind, first.text, fv.confidence if fv else None, alt.text, av.confidence if av else None,
                          "second" if kept else "first", alt.generated_tokens, alt.prompt_tokens, alt.total_s + alt.verify_s,
                          time.perf_counter() - self._started if kept else None)
        if kept:
            first.text, first.verification, first.citations, first.chunk_ids = (alt.text, alt.verification,
                                                                                alt.citations, alt.chunk_ids)
            yield Restart()
            yield alt.text
        first.second_look = look
        first.total_s = time.perf_counter() - self._started

    def read(self) -> Answer:
        """Consume the whole stream and return the finished answer."""
        for _ in self:
            pass
        return self.answer


@dataclass
class Prepared:
    hits: list[Hit]
    embeds: torch.Tensor  # (1, n_prompt, d)
    retrieval_s: float
    context_tokens: int  # rows of embeds that stand for chunks: token ids (rag, full) or summary vectors (lloco)
    prefix: tuple[str, int] | None = None  # the fixed text the prompt starts with and its rows (prefix KV cache)


_CUT_NUMBER = re.compile(r"(?<![\d.,])(\d[\d,]*)\.$")  # an answer ending in a number and a point: "14."


def decimals_kept(sources: list[str]) -> Callable[[str], bool]:
    """Whether an answer may end where it is, given the text of the chunks it read: not right after a
    number and a point when the sources continue that number with decimals ("14." where they say
    "14.3%"; issue 27) — the reader learned answers that end with a period, and in a figure the
    period is the decimal point. "completed in 1759." may end: no source says "1759.5"."""
    def may_end(text: str) -> bool:
        match = _CUT_NUMBER.search(text)
        if match is None:
            return True
        decimal = re.compile(rf"(?<![\d,]){re.escape(match.group(1))}\.\d")
        return not any(decimal.search(source) for source in sources)

    return may_end


@dataclass
class Answerer(ABC):
    """The shared question-answering procedure (template method)."""

    mode: ClassVar[Mode]
    sessions: sessionmaker
    index: CollectionIndex
    embedder: Embedder
    decoder: Decoder
    max_new_tokens: int = 96
    adapter: str | Path | None = None
    instruction: str = DEFAULT_INSTRUCTION  # the prompt's instruction (evaluation sets bring their own)
    retrieval: RetrievalMode = "dense"  # how chunks are found (the retrieval setting), the same for every mode
    reranker: Reranker | None = None  # the reranker setting's cross-encoder, the same for every mode
    prefix_cache: bool = False  # reuse the prompt's fixed start's KV cache (the prefix_cache setting)
    no_repeat_ngram: int = 0  # no n-gram generated twice (the no_repeat_ngram setting; 0: off)
    confidence: ConfidenceModel | None = None  # this mode's fitted model (None: app.core.confidence.PRIOR)
    thresholds: Thresholds | None = None  # the collection's for this mode (None: not calibrated)
    quote: bool = False  # every answer token continues a span of the chunks read (copy-constrained)
    second: Answerer | None = None  # asked again when an answer is not marked supported (on_doubt)
    on_doubt: OnDoubt = "off"  # what ``second`` is, for the answer's report

    def ask(self, question: str, *, top_k: int, document_ids: list[int] | None = None) -> AnswerStream:
        """Retrieve, assemble the prompt and start streaming the answer.

        ``document_ids`` restricts retrieval to those documents.
        """
        started = time.perf_counter()
        prepared = self.prepare(question, top_k=top_k, document_ids=document_ids)
        answer = Answer(mode=self.mode, question=question, prompt_tokens=int(prepared.embeds.shape[1]),
                        context_tokens=prepared.context_tokens,
                        retrieval_s=prepared.retrieval_s, citations=[self.citation(h, question) for h in prepared.hits],
                        chunk_ids=[h.chunk.id for h in prepared.hits], adapter=str(self.adapter) if self.adapter else None)
        quote = QuoteSpans([self.decoder.encode(h.chunk.text or "") for h in prepared.hits]) if self.quote else None
        pieces = stream_generate(self.decoder, prepared.embeds, max_new_tokens=self.max_new_tokens, adapter=self.adapter,
                                 prefix=prepared.prefix, no_repeat_ngram=self.no_repeat_ngram,
                                 may_end=decimals_kept([h.chunk.text for h in prepared.hits]), allowed=quote)
        second = self.second
        again = (self.on_doubt, lambda: second.ask(question, top_k=top_k, document_ids=document_ids)) if second else None
        return AnswerStream(pieces, answer, started, check=lambda text, generated: judged(verify_answer(
            text, question, prepared.hits, token_logprobs=generated.token_logprobs, capped=generated.capped),
            self.confidence, self.thresholds), second=again,
            doubt=self.thresholds.doubt if self.thresholds is not None else None)

    def prepare(self, question: str, *, top_k: int, document_ids: list[int] | None = None) -> Prepared:
        """The retrieved hits (best first) and the prompt's input embeddings (1, n_prompt, d)."""
        started = time.perf_counter()
        hits = self.retrieve(question, self.retrieval_k(top_k), document_ids=document_ids)
        retrieval_s = time.perf_counter() - started
        contexts = self.contexts(self.order(hits), question, top_k=top_k)
        parts = build_prompt(self.decoder.tokenizer, question=question, contexts=contexts, instruction=self.instruction)
        embeds = embed_prompt(self.decoder, parts)  # (1, n_prompt, d)
        window = self.decoder.max_context
        if embeds.shape[1] + self.max_new_tokens > window:  # the model would read past its window: garbage
            raise InvalidInputError(f"the prompt ({embeds.shape[1]} tokens) and the longest answer ({self.max_new_tokens}) "
                                    f"exceed the decoder's window of {window} tokens: ask a shorter question or "
                                    "retrieve fewer chunks (top-k)")
        # the text before the first context (template, system prompt, instruction) is the same for
        # every question: generation prefills it once per adapter (model.generation.prefilled)
        prefix = (parts[0], len(self.decoder.encode(parts[0]))) if len(parts) > 1 and isinstance(parts[0], str) else None
        return Prepared(hits, embeds, retrieval_s, sum(len(c) for c in contexts),
                        prefix if self.prefix_cache else None)

    reads_summaries: ClassVar[bool] = False  # the prompt holds the hits' summary vectors (read with them)

    def retrieve(self, question: str, top_k: int, *, document_ids: list[int] | None = None) -> list[Hit]:
        """Top-k chunks by retrieval score (best first), only from ``document_ids`` when given."""
        return Retriever(self.sessions, self.index, self.embedder, self.retrieval, self.reranker).search(
            question, top_k, document_ids=document_ids, with_summaries=self.reads_summaries)

    def retrieval_k(self, top_k: int) -> int:
        """How many chunks to retrieve for a question asked with ``top_k`` (lloco may afford more)."""
        return top_k

    @staticmethod
    def order(hits: list[Hit]) -> list[Hit]:
        """Document order (document, then position), as the paper concatenates chunks."""
        return sorted(hits, key=lambda h: (h.chunk.document_id, h.chunk.ordinal))

    @abstractmethod
    def contexts(self, hits: list[Hit], question: str, *, top_k: int) -> list[Context]:
        """What stands for the selected chunks (``hits``, in document order) in the prompt; the
        ``top_k`` best-scored of them are those the question asked for."""

    @staticmethod
    def citation(hit: Hit, question: str) -> Citation:
        c = hit.chunk
        return make_citation(document=hit.document, document_id=c.document_id, chunk_id=c.id, chunk_text=c.text,
                             chunk_start=c.char_start, page_offsets=hit.page_offsets, score=hit.score, question=question,
                             ocr_pages=hit.ocr_pages)


@dataclass
class LlocoAnswerer(Answerer):
    """LLoCO: each retrieved chunk is its kappa summary vectors, followed by its question-relevant
    sentences as text when ``expand_tokens`` > 0 (see :mod:`app.core.expansion`).

    ``extra_chunks`` more chunks are retrieved as vectors only (coverage for kappa tokens each);
    expansion sentences come from the ``top_k`` best chunks.
    """

    mode: ClassVar[Mode] = "lloco"
    reads_summaries: ClassVar[bool] = True
    expand_tokens: int = 0
    expand_share: float = 0.125  # context (vectors + sentences) <= this share of the top-k chunks' text tokens
    expand_scoring: ExpandScoring = "lexical"  # hybrid: + each sentence's cosine with the question (the embedder's)
    extra_chunks: int = 0

    def retrieval_k(self, top_k: int) -> int:
        return top_k + self.extra_chunks

    def contexts(self, hits: list[Hit], question: str, *, top_k: int) -> list[Context]:
        import numpy as np
        import torch

        # (k, kappa, d) fp16, read with the hits in one consistent view (a concurrent delete zeroes rows)
        vectors = np.stack([h.summary for h in hits]) if hits else np.zeros((0, 1, 1), dtype=np.float16)
        best = sorted(range(len(hits)), key=lambda i: -hits[i].score)[:top_k]  # positions in hits, best first
        budget = expansion_budget(self.expand_tokens, self.expand_share, vector_tokens=int(vectors.shape[1]) * len(hits),
                                  text_tokens=sum(hits[i].chunk.n_tokens for i in best))
        return expanded_contexts([torch.from_numpy(v.copy()) for v in vectors], [h.chunk.text for h in hits], question,
                                 best=best, budget=budget, encode=self.decoder.encode,
                                 similarity=self._similarity(question) if self.expand_scoring == "hybrid" else None)

    def _similarity(self, question: str):
        """sentences -> each one's cosine with ``question`` (the embedder's vectors are L2-normalised)."""
        def cosines(sentences: list[str]) -> list[float]:
            vectors = self.embedder.embed([question, *sentences])  # (1 + n, dim)
            return (vectors[1:] @ vectors[0]).tolist()

        return cosines


@dataclass
class PureLlocoAnswerer(LlocoAnswerer):
    """LLoCO with summary vectors only: no text of the chunks in the prompt (the paper's setting)."""

    mode: ClassVar[Mode] = "lloco-pure"

    def __post_init__(self) -> None:
        self.expand_tokens, self.extra_chunks = 0, 0


@dataclass
class RagAnswerer(Answerer):
    """Plain RAG baseline: each retrieved chunk's text, tokenized, on the base decoder."""

    mode: ClassVar[Mode] = "rag"

    def contexts(self, hits: list[Hit], question: str, *, top_k: int) -> list[Context]:
        return [Context(token_ids=self.decoder.encode(h.chunk.text)) for h in hits]


@dataclass
class ReaderRagAnswerer(RagAnswerer):
    """Plain RAG read with a reader LoRA (``adapter``): the honest control for lloco's fine-tuned reader."""

    mode: ClassVar[Mode] = "rag+reader"


@dataclass
class FullContextAnswerer(Answerer):
    """The whole text of the best-matching document(s), truncated to the model window."""

    mode: ClassVar[Mode] = "full"
    max_context_tokens: int = 8192

    def contexts(self, hits: list[Hit], question: str, *, top_k: int) -> list[Context]:
        # budget: the window minus the answer and the prompt's own text (template, instruction, question)
        frame = build_prompt(self.decoder.tokenizer, question=question, contexts=[Context(token_ids=[])],
                             instruction=self.instruction)
        overhead = sum(len(self.decoder.encode(p)) for p in frame if isinstance(p, str))
        budget = self.max_context_tokens - self.max_new_tokens - overhead
        doc_ids = list(dict.fromkeys(h.chunk.document_id for h in sorted(hits, key=lambda h: -h.score)))
        out: list[Context] = []
        for doc_id in doc_ids:
            if out:
                budget -= SEPARATOR_ALLOWANCE
            ids = self.decoder.encode("\n\n".join(document_page_texts(self.sessions, doc_id)))[: max(budget, 0)]
            if ids:
                out.append(Context(token_ids=ids))
            budget -= len(ids)
            if budget <= 0:
                break
        return out


ANSWERERS: dict[Mode, type[Answerer]] = {"lloco": LlocoAnswerer, "lloco-pure": PureLlocoAnswerer, "rag": RagAnswerer,
                                         "rag+reader": ReaderRagAnswerer, "full": FullContextAnswerer}
