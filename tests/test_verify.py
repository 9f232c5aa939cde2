"""Issue 23, verification: each claim of an answer checked against the text of the chunks it read
(numbers normalised, names, content words), with its evidence span; bad answers and empty sources
give a verdict, never a crash."""

from __future__ import annotations

import pytest

from app.core.numbers import parse_numbers
from app.core.verify import names_in, same_number, split_claims, verification_from_json, verification_json, verify_answer
from indexing.catalog import Chunk
from indexing.retrieval import Hit

FILING = ("PepsiCo reported first-quarter results. Organic revenue growth was 14.3 percent, and net revenue "
          "rose to $17.8 billion. Ramon Laguarta, Chairman and CEO, raised the full-year outlook.")
NOTES = "Inventories were (1,234) thousand lower. The plant in Tucson closed in 2021."


def hit(text: str, *, chunk_id: int = 1, document: str = "pep.pdf", start: int = 0, pages=(0,)) -> Hit:
    chunk = Chunk(id=chunk_id, document_id=chunk_id, collection_id=1, ordinal=0, page_start=1, page_end=len(pages),
                  char_start=start, char_end=start + len(text), text=text, n_tokens=len(text.split()))
    return Hit(chunk, 0.6, document, list(pages))


SOURCES = [hit(FILING), hit(NOTES, chunk_id=2, document="notes.pdf")]


@pytest.mark.parametrize(("claimed", "written"), [
    ("14.3%", "14.3 percent"), ("$17.8 billion", "$17,800 million"), ("17,800", "$17.8 billion"),
    ("-1,234", "(1,234)"), ("14.3 per cent", "14.29%"), ("1.2bn", "1,200,000,000"),
])
def test_numbers_are_compared_as_values_however_written(claimed, written):
    assert same_number(parse_numbers(claimed)[0], parse_numbers(written)[0])


@pytest.mark.parametrize(("claimed", "written"), [("14.5%", "14.3%"), ("14%", "$14"), ("1759", "1759000")])
def test_different_numbers_differ(claimed, written):
    assert not same_number(parse_numbers(claimed)[0], parse_numbers(written)[0])


def test_claims_are_sentences_and_a_decimal_point_ends_none():
    answer = "Growth was 14.3%. Net revenue rose to $17.8 billion! ..."
    assert [answer[s:e] for s, e in split_claims(answer)] == ["Growth was 14.3%.", "Net revenue rose to $17.8 billion!"]
    assert names_in("The CEO is Ramon Laguarta of PepsiCo") == ["CEO", "Ramon", "Laguarta", "PepsiCo"]


def test_a_supported_claim_comes_with_its_evidence_span():
    v = verify_answer("Organic revenue growth was 14.3%.", "What was organic revenue growth?", SOURCES)
    assert v.verdict == "supported" and v.supported_share == 1.0
    (claim,) = v.claims
    e = claim.evidence
    assert claim.status == "supported" and (e.document, e.chunk_id, e.page) == ("pep.pdf", 1, 1)
    assert FILING[e.char_start:e.char_end].startswith("Organic revenue growth was 14.3 percent")


def test_a_wrong_number_or_a_name_not_in_the_sources_is_unsupported_and_said_why():
    v = verify_answer("Organic revenue growth was 14.5%. The CEO is Indra Nooyi.", "q", SOURCES)
    assert v.verdict == "unsupported" and [c.status for c in v.claims] == ["unsupported", "unsupported"]
    assert v.claims[0].missing[0] == "14.5%" and {"Indra", "Nooyi"} <= set(v.claims[1].missing)
    partly = verify_answer("Growth was 14.3 percent. Revenue fell to $9 billion.", "q", SOURCES)
    assert partly.verdict == "partly" and [c.status for c in partly.claims] == ["supported", "unsupported"]
    assert partly.claims[1].missing == ("$9 billion", "fell")  # the sources say it rose


def test_the_evidence_is_the_source_that_holds_the_claim():
    v = verify_answer("The Tucson plant closed in 2021.", "When did the plant close?", SOURCES)
    assert v.verdict == "supported" and v.claims[0].evidence.document == "notes.pdf"
    assert verify_answer("Inventories were 1,234 thousand lower.", "q", SOURCES).verdict == "supported"


def test_content_words_alone_must_mostly_be_in_the_sources():
    assert verify_answer("Revenue rose.", "q", SOURCES).verdict == "supported"
    off = verify_answer("Honeybees dance to tell sisters about flowers.", "q", SOURCES)
    assert off.verdict == "unsupported" and "honeybees" in off.claims[0].missing


@pytest.mark.parametrize("answer", ["", "   ", "...", "?!", "—"])
def test_an_empty_or_punctuation_answer_gets_a_verdict(answer):
    v = verify_answer(answer, "q", SOURCES)
    assert v.verdict == "empty" and v.claims == () and v.supported_share == 0.0


def test_no_sources_or_sources_without_text_give_a_verdict():
    assert verify_answer("Growth was 14.3%.", "q", []).verdict == "no-sources"
    blank = verify_answer("Growth was 14.3%.", "q", [hit("", chunk_id=3)])  # a scanned page OCR read nothing on
    assert blank.verdict == "unsupported" and blank.claims[0].missing == ("14.3%", "growth")


@pytest.mark.parametrize(("question", "names", "words"), [
    ("Who is the CEO of Netflix?", 0.5, 1.0),  # CEO is in the filing, Netflix nowhere
    ("What was PepsiCo's organic revenue growth in 2021?", 1.0, 1.0),  # PepsiCo's = PepsiCo; 2021 in the notes
    ("How many dolphins live in the harbour?", 1.0, 0.0),  # no name; neither word retrieved
    ('Fill in the blank, using the documents: "Ramon ____, Chairman and CEO, raised the outlook."', 1.0, 1.0),
    ('Fill in the blank, using the documents: "The Bay of ____ drains into Minas Basin."', 0.0, 0.0),
    ("?", 1.0, 1.0),  # nothing to look for
])
def test_whether_the_question_s_own_names_and_words_were_retrieved(question, names, words):
    """A question the documents cannot answer retrieves chunks that do not hold its subject (issue 23)."""
    s = verify_answer("14.3 percent", question, SOURCES).signals
    assert (s["question_names"], s["question_words"]) == (pytest.approx(names), pytest.approx(words))


def test_the_signals_say_how_it_was_checked():
    v = verify_answer("14.3 percent", "What was organic revenue growth?", SOURCES)
    assert v.signals == {"claims": 1.0, "supported_share": 1.0, "verbatim": 1.0, "top_score": 0.6,
                         "mean_logprob": 0.0, "min_logprob": 0.0, "first_logprob": 0.0, "capped": 0.0, "tokens": 0.0,
                         "type_match": 0.5, "words": 2.0,  # "what was ...?" does not say which kind of answer
                         "question_names": 1.0, "question_words": 1.0}  # no name; organic, revenue, growth held
    g = verify_answer("14.3 percent", "q", SOURCES, token_logprobs=[-0.5, -2.0, -0.1], capped=True).signals
    assert (g["mean_logprob"], g["min_logprob"], g["first_logprob"], g["capped"], g["tokens"]) == \
        (pytest.approx(-2.6 / 3), -2.0, -0.5, 1.0, 3.0)
    kinds = [verify_answer(a, q, SOURCES).signals["type_match"] for q, a in [
        ("How many plants closed?", "Two plants closed."), ("How many plants closed?", "14.3%"),
        ("When did it close?", "It never did."), ("Who runs PepsiCo?", "Ramon Laguarta"), ("Who runs it?", "nobody")]]
    assert kinds == [0.0, 1.0, 0.0, 1.0, 0.0]  # "Two" is no figure; "nobody" no name


def test_every_answer_is_checked_and_lloco_ask_json_carries_it(service, monkeypatch, capsys, pdf_factory):
    """The template method checks every mode's answer (its time kept apart); `lloco ask --json` prints
    the whole answer with its verification, the terminal form says the verdict."""
    import json

    from tests.cli_runner import flat, run_cli

    service.create_collection("guides")
    service.ingest("guides", [pdf_factory("guide.pdf", ["Lamps and lighthouses. " * 10, "Bees and flowers. " * 10])])
    for mode in ("lloco", "rag", "full"):
        answer = service.ask("guides", "Where are the bees?", mode=mode, top_k=2).read()
        assert answer.verification is not None and answer.verify_s >= 0
        assert answer.verification.verdict in ("supported", "partly", "unsupported", "empty")
    capsys.readouterr()  # what ingestion printed (llama-index's chunking note on this tiny chunk size)
    code, out, _ = run_cli(monkeypatch, capsys, "ask", "guides", "Where are the bees?", "--mode", "rag", "--json",
                           "--local", service=service)
    data = json.loads(out)
    v = data["verification"]
    assert code == 0 and data["mode"] == "rag" and data["citations"] and v["verdict"] in ("supported", "partly",
                                                                                          "unsupported", "empty")
    assert v["summary"] and len(v["claims"]) == int(v["signals"]["claims"])
    code, out, _ = run_cli(monkeypatch, capsys, "ask", "guides", "Where are the bees?", "--mode", "rag", "--local",
                           service=service)
    assert code == 0 and f"checked: {v['summary']}" in flat(out)


def test_marked_answers_show_unsupported_claims_and_keep_the_text():
    from app.web.checks import marked

    answer = "Growth was 14.3%. Revenue fell to $9 billion."
    v = verify_answer(answer, "q", SOURCES)
    shown = marked(answer, v)
    assert shown.startswith("Growth was 14\\.3%\\.") and ":orange-background[Revenue fell to \\$9 billion\\.]" in shown
    assert marked(answer, None) == "Growth was 14\\.3%\\. Revenue fell to \\$9 billion\\."


def test_a_conversation_keeps_each_answers_check_and_the_chat_page_shows_it(web_service, pdf_factory):
    """Stored with the answer (migration 0015) and read back equal; the Chat page shows the verdict and,
    per claim, its evidence or what the sources lack."""
    from streamlit.testing.v1 import AppTest

    service = web_service
    service.create_collection("notes")
    service.ingest("notes", [pdf_factory("keeper.pdf", ["The lighthouse keeper lit the lamp every evening."])])
    chat = service.start_chat("notes")
    answer = service.ask("notes", "What did the keeper light?", mode="rag", top_k=1).read()
    service.record_message(chat.id, "user", answer.question)
    service.record_message(chat.id, "assistant", answer.text, answer=answer)
    stored = service.chat_messages(chat.id)[-1]
    assert stored.verification == answer.verification and stored.verification is not None
    text = "The keeper lit the lamp. He was paid 40 pounds."
    made_up = verify_answer(text, "q", [hit("The lighthouse keeper lit the lamp every evening.", document="keeper.pdf")])

    def script():
        import dataclasses

        import streamlit as st

        from app.web.chat import show_message
        from app.web.common import get_service

        service = get_service()
        message = service.chat_messages(service.list_chats("notes")[0].id)[-1]
        show_message(service, message)
        show_message(service, dataclasses.replace(message, text=st.session_state["text"],
                                                  verification=st.session_state["made_up"]))

    at = AppTest.from_function(script, default_timeout=120)
    at.session_state["text"], at.session_state["made_up"] = text, made_up
    at.run()
    assert not at.exception, at.exception
    captions = [c.value for c in at.caption if "Checked against the sources" in c.value]
    assert len(captions) == 2 and captions[1].endswith("partly supported\\: 1 of 2 claims found in the sources")
    shown = [m.value for m in at.markdown]
    assert any(":orange-background[He was paid 40 pounds\\.]" in m for m in shown), shown
    assert any("*keeper\\.pdf, p. 1:*" in m for m in shown), shown
    assert any("the sources lack: 40, paid, pounds" in m for m in shown), shown


def test_a_declined_answer_is_shown_as_such_with_its_confidence():
    """Issue 23: below the collection's decline threshold the page says the documents don't seem to say
    it (the closest passages follow as citations); the model's words stay visible, marked as unconfirmed."""
    import dataclasses

    from app.core.confidence import Thresholds
    from app.core.verify import judged
    from app.web.checks import DECLINED, marked
    from tests.fakes import fixed_confidence

    unsure = fixed_confidence(-3.0)
    t = Thresholds(decline=0.1, supported=0.8, precision=0.9, coverage=0.8, n=40)
    v = judged(verify_answer("Growth was 14.3%.", "q", SOURCES), unsure, t)
    assert v.level == "declined" and v.confidence == pytest.approx(0.0474, abs=1e-3)
    assert v.summary() == "declined: the documents don't seem to say (confidence 0.05): 1 of 1 claim found in the sources"
    shown = marked("Growth was 14.3%.", v)
    assert shown.startswith(f"**{DECLINED}**") and "not confirmed by them: Growth was 14\\.3%\\." in shown
    sure = judged(v, dataclasses.replace(unsure, bias=3.0), t)
    assert sure.level == "supported" and sure.summary().startswith("supported (confidence 0.95)")
    assert marked("Growth was 14.3%.", sure) == "Growth was 14\\.3%\\."
    assert verification_from_json(verification_json(sure)) == sure


@pytest.mark.parametrize(("answer", "refused"), [
    ("unanswerable", True), ("Unanswerable.", True), ("This question cannot be answered from the passage.", True),
    ("The context does not mention Netflix's CEO.", True), ("The documents don't say.", True),
    ("No answer", True),
    ("No", False), ("None of them", False), ("Growth was 14.3%.", False),
    ("The board gave no answer to the union until 2021, when it raised wages by 4.1% across every plant it runs "
     "in the northern region.", False),  # long: it answers something, whatever it says on the way
])
def test_the_decoder_s_own_refusal_is_declined_whatever_its_confidence(answer, refused):
    from app.core.confidence import Thresholds
    from app.core.verify import judged
    from tests.fakes import fixed_confidence

    v = judged(verify_answer(answer, "Who is the CEO of Netflix?", SOURCES), fixed_confidence(3.0),
               Thresholds(decline=0.1, supported=0.8, precision=0.9, coverage=0.8, n=40))
    assert (v.verdict == "refused") == refused
    if refused:
        assert v.claims == () and v.level == "declined" and v.confidence > 0.9
        assert v.summary().endswith("the model found no answer in them")
    else:
        assert v.level != "declined"
