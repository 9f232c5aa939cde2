"""A second look when lloco is unsure (issue 23, the on_doubt setting): the question is asked again,
the answer with the higher confidence is kept and both costs are reported; quote mode copies spans."""

from __future__ import annotations

import pytest

from app.core.second_look import QuoteSpans, Restart, in_doubt, keeps_second
from app.core.verify import Verification
from tests.fakes import fixed_confidence, text_collection

TEXT = ("The Eddystone lighthouse was completed in 1759 by John Smeaton near Plymouth. "
        "Its granite tower stood for 123 years before the rock eroded. ")


def test_quote_spans_allow_only_continuations_of_the_sources():
    spans = QuoteSpans([[1, 2, 3, 4], [2, 3, 9], []])
    assert spans([]) == {1, 2, 3, 4, 9}
    assert spans([2]) == {3} and spans([2, 3]) == {4, 9} and spans([2, 3, 4]) == set()
    assert spans([3]) == {4, 9}  # a new answer: matched from scratch
    assert spans([7]) == set()


def test_which_answer_a_second_look_keeps():
    def v(conf, level="answered"):
        return Verification("partly", confidence=conf, level=level)

    assert in_doubt(v(0.3)) and in_doubt(None) and not in_doubt(v(0.9, "supported"))
    assert in_doubt(v(0.3), 0.4) and not in_doubt(v(0.5), 0.4)  # the collection's doubt threshold
    assert not in_doubt(v(0.3, "supported"), 0.4) and in_doubt(v(None), 0.4)
    assert keeps_second(v(0.3), v(0.5)) and not keeps_second(v(0.5), v(0.3)) and not keeps_second(v(0.5), v(0.5))
    assert not keeps_second(v(0.1), v(0.9, "declined")) and not keeps_second(v(0.1), None)


def test_copy_constrained_generation_only_writes_spans_of_its_sources(tiny_decoder):
    from model.generation import stream_generate

    decoder = tiny_decoder
    source = decoder.encode(TEXT)
    e = decoder.embed_ids(list(range(40, 70))).unsqueeze(0).detach()
    stream = stream_generate(decoder, e, max_new_tokens=12, allowed=QuoteSpans([source]))
    list(stream)
    ids = stream.token_ids
    assert ids and any(source[i:i + len(ids)] == ids for i in range(len(source)))  # one span, copied


@pytest.fixture
def doubtful(service, tmp_path):
    return text_collection(service, tmp_path, "light", TEXT * 6)


@pytest.mark.parametrize("kind", ["rag", "quote", "expand"])
def test_a_second_look_with_a_higher_confidence_replaces_the_first_answer(doubtful, monkeypatch, kind):
    service = doubtful
    first = service.ask("light", "When was the lighthouse completed?", mode="lloco").read()
    monkeypatch.setattr(service, "confidence_models", lambda: {"lloco": fixed_confidence(-2.0 if kind != "expand" else 0.0),
                                                               "rag": fixed_confidence(2.0)})
    service.settings.on_doubt = kind
    if kind == "expand":  # the wider lloco answer must score higher than the first: scripted by the call order
        calls = iter([-2.0, 2.0])
        monkeypatch.setattr(service, "confidence_models", lambda: {"lloco": fixed_confidence(next(calls))})
    stream = service.ask("light", "When was the lighthouse completed?", mode="lloco")
    pieces = list(stream)
    answer = stream.answer
    look = answer.second_look
    assert look is not None and look.kind == kind and look.kept == "second"
    assert look.first_text == first.text and look.confidence > look.first_confidence
    assert sum(isinstance(p, Restart) for p in pieces) == 1 and pieces[-1] == answer.text == look.text
    assert look.generated_tokens > 0 and look.seconds > 0 and answer.total_s >= look.seconds
    assert answer.generated_tokens == first.generated_tokens  # the first answer's own costs stay its own
    if kind == "rag":
        assert answer.text == service.ask("light", "When was the lighthouse completed?", mode="rag").read().text
    if kind == "quote":
        assert " ".join(answer.text.split()) in " ".join(TEXT.split())  # a verbatim span of the chunk


def test_a_second_look_that_is_no_surer_keeps_the_first_answer(doubtful, monkeypatch):
    service = doubtful
    monkeypatch.setattr(service, "confidence_models", lambda: {"lloco": fixed_confidence(0.0), "rag": fixed_confidence(-1.0)})
    first = service.ask("light", "Who built it?", mode="lloco").read()
    service.settings.on_doubt = "rag"
    stream = service.ask("light", "Who built it?", mode="lloco")
    pieces = list(stream)
    answer = stream.answer
    assert answer.second_look.kept == "first" and answer.text == first.text
    assert not any(isinstance(p, Restart) for p in pieces) and "".join(pieces).strip() == first.text
    rag = service.ask("light", "Who built it?", mode="rag").read()
    assert rag.second_look is None  # only lloco modes look again


def test_no_second_look_above_the_collection_s_doubt_threshold(doubtful, monkeypatch):
    """A calibrated collection asks again only below its doubt threshold (the confidence from which
    lloco's own answers were right as often as RAG's): above it a second look would only cost time."""
    from app.core.confidence import Thresholds, thresholds_json
    from indexing import catalog_queries as cq

    service = doubtful
    monkeypatch.setattr(service, "confidence_models", lambda: {"lloco": fixed_confidence(0.0), "rag": fixed_confidence(2.0)})
    service.settings.on_doubt = "rag"
    question = "When was the lighthouse completed?"

    def calibrated(doubt):
        t = Thresholds(decline=0.0, supported=1.01, precision=0.0, coverage=1.0, n=10, doubt=doubt)
        cq.set_thresholds(service.sessions, service.collection_row("light").id, thresholds_json({"lloco": t}))
        return service.ask("light", question, mode="lloco").read()

    sure = calibrated(0.4)  # the fixed confidence is 0.5: above it
    assert sure.second_look is None and sure.verification.confidence == pytest.approx(0.5)
    unsure = calibrated(0.6)
    assert unsure.second_look is not None and unsure.second_look.kept == "second"


def test_a_conversation_keeps_the_second_look(doubtful, monkeypatch):
    service = doubtful
    monkeypatch.setattr(service, "confidence_models", lambda: {"lloco": fixed_confidence(-2.0), "rag": fixed_confidence(2.0)})
    service.settings.on_doubt = "rag"
    answer = service.ask("light", "When was the lighthouse completed?", mode="lloco").read()
    chat = service.start_chat("light", "When was the lighthouse completed?")
    service.record_message(chat.id, "user", "When was the lighthouse completed?")
    service.record_message(chat.id, "assistant", answer.text, answer=answer)
    question, stored = service.chat_messages(chat.id)
    assert question.second_look is None and stored.second_look == answer.second_look  # every field back
    assert stored.second_look.kept == "second" and stored.second_look.kind == "rag"
