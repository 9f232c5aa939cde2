"""Prompt assembly: one procedure for every mode; an identity compressor makes lloco == rag."""

from __future__ import annotations

import pytest
import torch

from app.core.answerers import LlocoAnswerer, RagAnswerer
from model.generation import prompt_logits
from model.prompts import Context, build_prompt, embed_prompt

DOC = ("The lighthouse keeper lit the lamp every evening at dusk. " * 6 + "\n\n"
       + "Honeybees dance to tell their sisters where the flowers are. " * 6)


class IdentityLloco(LlocoAnswerer):
    """LLoCO mode with an identity compressor: a chunk's summary vectors are its token embeddings."""

    def contexts(self, hits, question, *, top_k):
        return [Context(vectors=self.decoder.embed_ids(self.decoder.encode(h.chunk.text))) for h in hits]


@pytest.fixture
def collection(service, tmp_path):
    """Collection "c" holding DOC."""
    doc = tmp_path / "doc.txt"
    doc.write_text(DOC)
    service.create_collection("c")
    service.ingest("c", [doc])
    return "c"


def _answerer(cls, service, name):
    row = service.collection_row(name)
    return cls(sessions=service.sessions, index=service.index(row), embedder=service.embedder, decoder=service.decoder)


def test_identity_compressor_gives_rag_logits(service, collection):
    rag = _answerer(RagAnswerer, service, "c").prepare("where are the flowers?", top_k=3)
    lloco = _answerer(IdentityLloco, service, "c").prepare("where are the flowers?", top_k=3)
    assert [h.chunk.id for h in rag.hits] == [h.chunk.id for h in lloco.hits]
    assert len(rag.hits) >= 2
    assert rag.embeds.shape == lloco.embeds.shape
    torch.testing.assert_close(prompt_logits(service.decoder, lloco.embeds), prompt_logits(service.decoder, rag.embeds))


def test_lloco_prompt_is_shorter_by_compression(service, collection):
    rag = _answerer(RagAnswerer, service, "c").prepare("lamp", top_k=2)
    lloco = _answerer(LlocoAnswerer, service, "c").prepare("lamp", top_k=2)
    context_tokens = sum(h.chunk.n_tokens for h in rag.hits)
    kappa = service.compressor.kappa
    # the prompts differ exactly by each chunk's tokens replaced with kappa vectors
    assert rag.embeds.shape[1] - lloco.embeds.shape[1] == context_tokens - kappa * len(rag.hits)
    # and the context part of each prompt is counted as such
    assert (rag.context_tokens, lloco.context_tokens) == (context_tokens, kappa * len(rag.hits))


def test_lloco_contexts_are_the_stored_summary_vectors_in_document_order(service, collection):
    answerer = _answerer(LlocoAnswerer, service, "c")
    hits = answerer.order(answerer.retrieve("flowers lamp", 3))
    assert [h.chunk.ordinal for h in hits] == sorted(h.chunk.ordinal for h in hits)
    contexts = answerer.contexts(hits, "q", top_k=3)
    fresh = service.compressor.compress([service.decoder.encode(h.chunk.text) for h in hits])
    for context, vectors in zip(contexts, fresh, strict=True):
        assert context.vectors.shape == (service.compressor.kappa, service.decoder.hidden_size)
        torch.testing.assert_close(context.vectors.float(), vectors.float(), atol=1e-3, rtol=1e-3)


def test_build_prompt_places_contexts_between_instruction_and_question(tiny_decoder):
    parts = build_prompt(tiny_decoder.tokenizer, question="Why?", contexts=[Context(token_ids=[5, 6]), Context(token_ids=[7])])
    kinds = [type(p).__name__ for p in parts]
    assert kinds == ["str", "Context", "str", "Context", "str"]
    assert parts[0].startswith("<|im_start|>system") and "Context:" in parts[0]
    assert parts[-1].rstrip().endswith("<|im_start|>assistant") and "Question: Why?" in parts[-1]
    embeds = embed_prompt(tiny_decoder, parts)
    text_tokens = sum(len(tiny_decoder.encode(p)) for p in parts if isinstance(p, str))
    assert embeds.shape == (1, text_tokens + 3, tiny_decoder.hidden_size)


def test_context_must_hold_exactly_one_kind():
    with pytest.raises(ValueError):
        Context()
    with pytest.raises(ValueError):
        Context(token_ids=[1], vectors=torch.zeros(1, 4))
