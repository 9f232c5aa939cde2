"""Selective expansion: lloco mode adds the question's sentences as text, within its token budget."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings
from app.core.expansion import select_sentences
from tests.cli_runner import flat, run_cli

CHUNKS = [
    "The keeper lit the lamp at dusk. The Eddystone light was built by John Smeaton in 1759. Gulls nested there.",
    "Bees dance to show where flowers are. The hive holds 40,000 bees in summer. Honey is stored in wax cells.",
    "Smeaton used granite blocks dovetailed together. The tower stood until 1877. Its stump remains today.",
]


def words(text: str) -> list[int]:
    """A fake tokenizer: one token per whitespace-separated word."""
    return list(range(len(text.split())))


def test_best_sentences_are_chosen_and_kept_in_document_order():
    chosen = select_sentences(CHUNKS, "Who built the Eddystone light, and with what blocks?", budget=40, encode=words)
    texts = [" ".join(CHUNKS[s.chunk][s.start:s.end].split()) for s in chosen]
    assert texts[0] == "The Eddystone light was built by John Smeaton in 1759."
    assert "Smeaton used granite blocks dovetailed together." in texts
    assert [(s.chunk, s.start) for s in chosen] == sorted((s.chunk, s.start) for s in chosen)
    assert all(s.chunk != 1 for s in chosen)  # nothing about bees


@pytest.mark.parametrize("budget", [0, 1, 5, 8, 12, 17, 30, 1000])
def test_never_exceeds_the_budget(budget):
    chosen = select_sentences(CHUNKS, "Eddystone Smeaton granite bees hive honey tower", budget=budget, encode=words)
    assert sum(len(s.token_ids) for s in chosen) <= budget
    if budget == 0:
        assert chosen == []


def test_a_sentence_longer_than_the_budget_is_cut_only_when_it_is_the_best():
    long = "Smeaton " + "very " * 30 + "long sentence."
    chosen = select_sentences([long], "Smeaton", budget=10, encode=words)
    assert len(chosen) == 1 and len(chosen[0].token_ids) == 10
    assert select_sentences([long], "Smeaton", budget=4, encode=words) == []  # too small to be worth a fragment


def test_unrelated_and_repeated_sentences_are_not_taken():
    assert select_sentences(CHUNKS, "zebra crossing", budget=100, encode=words) == []
    overlap = ["A. The lens came from Paris in 1823.", "The lens came from Paris in 1823. B."]
    chosen = select_sentences(overlap, "Where did the lens come from?", budget=100, encode=words)
    assert len(chosen) == 1
    with pytest.raises(ValueError, match="budget"):
        select_sentences(CHUNKS, "x", budget=-1, encode=words)


def test_expansion_setting_is_validated(tmp_path, monkeypatch, capsys):
    assert Settings(home=tmp_path, expand_tokens=0).expand_tokens == 0
    for bad in (-1, 100_000):
        with pytest.raises(ValidationError, match="expand_tokens"):
            Settings(home=tmp_path, expand_tokens=bad)
    code, _, err = run_cli(monkeypatch, capsys, "--home", str(tmp_path), "--set", "expand_tokens=-5", "collections", "list")
    assert code == 2 and "expand_tokens" in flat(err) and "greater than or equal to 0" in flat(err)


@pytest.fixture
def collection(service, tmp_path):
    doc = tmp_path / "lights.txt"
    doc.write_text(" ".join(CHUNKS * 3))
    service.create_collection("c")
    service.ingest("c", [doc])
    return "c"


def test_lloco_prompt_holds_vectors_and_budgeted_sentences(service, collection):
    question = "Who built the Eddystone light?"
    service.settings.expand_tokens, service.settings.expand_share = 12, 1.0
    expanded = service.answerer(collection, "lloco").prepare(question, top_k=2)
    pure = service.answerer(collection, "lloco-pure").prepare(question, top_k=2)
    rag = service.answerer(collection, "rag").prepare(question, top_k=2)
    kappa = service.compressor.kappa
    assert [h.chunk.id for h in expanded.hits] == [h.chunk.id for h in pure.hits] == [h.chunk.id for h in rag.hits]
    assert pure.context_tokens == kappa * len(pure.hits)
    assert kappa * len(pure.hits) < expanded.context_tokens <= kappa * len(pure.hits) + 12
    assert expanded.context_tokens < rag.context_tokens
    answer = service.ask(collection, question, mode="lloco", top_k=2).read()
    assert answer.mode == "lloco" and answer.context_tokens == expanded.context_tokens
    assert service.ask(collection, question, mode="lloco-pure", top_k=2).read().mode == "lloco-pure"


def test_extra_chunks_are_retrieved_as_vectors_only(service, collection):
    question = "Who built the Eddystone light?"
    service.settings.expand_tokens, service.settings.lloco_extra_chunks = 0, 2
    prepared = service.answerer(collection, "lloco").prepare(question, top_k=2)
    assert len(prepared.hits) == 4 and prepared.context_tokens == 4 * service.compressor.kappa
    pure = service.answerer(collection, "lloco-pure").prepare(question, top_k=2)
    assert len(pure.hits) == 2  # the pure mode is the paper's: top-k chunks, vectors only


def test_context_never_exceeds_its_share_of_the_text(service, collection):
    question = "Who built the Eddystone light, and where do bees dance?"
    service.settings.expand_tokens = 1000
    for share in (0.1, 0.25, 0.5):
        service.settings.expand_share = share
        prepared = service.answerer(collection, "lloco").prepare(question, top_k=3)
        text_tokens = sum(h.chunk.n_tokens for h in prepared.hits)
        vector_tokens = service.compressor.kappa * len(prepared.hits)
        assert prepared.context_tokens <= max(vector_tokens, share * text_tokens)
    assert prepared.context_tokens > vector_tokens  # at half the text, some sentences fit


def test_hybrid_scoring_adds_the_embedders_cosine():
    question = "Which land did he rule?"
    texts = ["He ruled the land for years. Aquilonia, his land and kingdom, lay north of the sea."]
    lexical = select_sentences(texts, question, budget=10, encode=words)  # a tie on words: the first wins
    assert [texts[0][s.start:s.end] for s in lexical] == ["He ruled the land for years."]

    def similarity(sentences):  # the embedder finds the kingdom sentence closest to the question
        return [0.9 if "kingdom" in s else 0.1 for s in sentences]

    hybrid = select_sentences(texts, question, budget=10, encode=words, similarity=similarity)
    assert [texts[0][s.start:s.end] for s in hybrid] == ["Aquilonia, his land and kingdom, lay north of the sea."]
    assert sum(len(s.token_ids) for s in hybrid) <= 10


def test_hybrid_lloco_mode_uses_the_retrieval_embedder(service, collection):
    question = "Who built the Eddystone light?"
    service.settings.expand_tokens, service.settings.expand_share = 12, 1.0
    seen = []
    embed = service.embedder.embed

    def spy(texts, **kw):
        seen.append(list(texts))
        return embed(texts, **kw)

    service.embedder.embed = spy
    lexical = service.answerer(collection, "lloco").prepare(question, top_k=2)
    assert len(seen) == 1  # retrieval only
    service.settings.expand_scoring = "hybrid"
    hybrid = service.answerer(collection, "lloco").prepare(question, top_k=2)
    assert len(seen) == 3 and seen[2][0] == question and len(seen[2]) > 2  # the question, then the sentences
    assert hybrid.context_tokens <= service.compressor.kappa * len(hybrid.hits) + 12
    assert [h.chunk.id for h in hybrid.hits] == [h.chunk.id for h in lexical.hits]
