"""Reranking (indexing/rerank.py): a cross-encoder reorders the first stage's best ``pool`` chunks
for every answering mode and the service's retrieve; a real CrossEncoder folder (a tiny random BERT)
loads and scores through the ``reranker`` setting; a missing reranker is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.service import LlocoService
from model.errors import ModelNotAvailableError
from tests.fakes import HashEmbedder

FACTS = ["The keeper lit the lamps every evening.", "Honeybees dance to show where the flowers are.",
         "The harbour froze in the winter of 1963.", "Copper roofs turn green as they weather."]


class WordReranker:
    """Scores a text by whether it holds ``word``; records what it was handed."""

    def __init__(self, word: str, *, pool: int) -> None:
        self.word, self.pool, self.calls = word, pool, []

    def scores(self, question: str, texts: list[str]) -> list[float]:
        self.calls.append((question, list(texts)))
        return [1.0 if self.word in t else 0.0 for t in texts]


def _collection(service, pdf_factory) -> None:
    service.create_collection("c")
    service.ingest("c", [pdf_factory(f"doc{i}.pdf", [fact]) for i, fact in enumerate(FACTS)])


def test_reranker_reorders_the_pool_for_every_mode(settings, tiny_decoder, pdf_factory):
    question = "Where are the flowers, say the dancing honeybees?"
    plain = LlocoService(settings, decoder=tiny_decoder, embedder=HashEmbedder())
    _collection(plain, pdf_factory)
    first_stage = [text for _, text in plain.retrieve("c", question, top_k=4)]
    assert "copper" not in first_stage[0].lower()  # the reranker's choice is not the first stage's best
    reranker = WordReranker("Copper", pool=3)
    service = LlocoService(settings, decoder=tiny_decoder, embedder=plain.embedder, reranker=reranker)
    found = service.retrieve("c", question, top_k=2)
    assert len(found) == 2
    handed = reranker.calls[-1][1]
    assert handed == first_stage[:3]  # the first stage's best pool, in its order
    expected = sorted(handed, key=lambda t: "Copper" not in t)[:2]  # stable: ties keep the first stage's order
    assert [text for _, text in found] == expected
    by_service = [c.chunk_id for c, _ in found]
    for mode in ("lloco", "lloco-pure", "rag", "rag+reader", "full"):
        assert [h.chunk.id for h in service.answerer("c", mode).retrieve(question, 2)] == by_service
    # a pool smaller than top_k: the first stage still hands over top_k chunks
    reranker.pool = 1
    assert len(service.retrieve("c", question, top_k=3)) == 3
    assert len(reranker.calls[-1][1]) == 3


def test_reranker_with_summaries_keeps_each_hits_vectors(settings, tiny_decoder, pdf_factory):
    service = LlocoService(settings, decoder=tiny_decoder, embedder=HashEmbedder(),
                           reranker=WordReranker("harbour", pool=4))
    _collection(service, pdf_factory)
    hits = service.answerer("c", "lloco").retrieve("lamps and bees", 2)
    assert "harbour" in hits[0].chunk.text
    store = service.index(service.collection_row("c"))
    for hit in hits:  # reordered hits carry their own chunk's vectors, not their old position's
        expected = store.summary_vectors([hit.chunk.summary_row])[0]
        assert (hit.summary == expected).all()


def _tiny_cross_encoder(folder: Path) -> Path:
    """A random one-layer BERT sequence classifier (one label) with a word-piece vocabulary: a
    sentence-transformers CrossEncoder folder."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    words = sorted({w.strip(".,?").lower() for fact in FACTS for w in fact.split()} | {"where", "what"})
    vocab = folder / "vocab.txt"
    folder.mkdir(parents=True)
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(vocab_file=str(vocab)).save_pretrained(folder)
    config = BertConfig(vocab_size=len(words) + 5, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=128, num_labels=1)
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder


def test_cross_encoder_folder_through_the_setting(settings, tiny_decoder, pdf_factory, tmp_path):
    folder = _tiny_cross_encoder(tmp_path / "ce")
    service = LlocoService(settings.model_copy(update={"reranker": str(folder), "rerank_pool": 4}), decoder=tiny_decoder,
                           embedder=HashEmbedder())
    _collection(service, pdf_factory)
    question = "where did the keeper light the lamps?"
    reranker = service.reranker
    assert reranker is not None and reranker.pool == 4
    texts = [text for _, text in service.retrieve("c", question, top_k=4)]
    scores = reranker.scores(question, texts)
    assert scores == sorted(scores, reverse=True)  # the order is the cross-encoder's own
    assert reranker.scores(question, texts) == scores  # deterministic
    assert len(service.retrieve("c", question, top_k=2)) == 2


def test_missing_or_bad_reranker_is_a_clear_error(settings, tiny_decoder, tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    for source, words in ((str(empty), "no config.json"), (str(tmp_path / "absent" / "ce"), "could not be loaded")):
        service = LlocoService(settings.model_copy(update={"reranker": source}), decoder=tiny_decoder)
        with pytest.raises(ModelNotAvailableError, match=words):
            _ = service.reranker
    assert LlocoService(settings, decoder=tiny_decoder).reranker is None
