"""The Chat page (AppTest, tiny model): streamed cited answers, chat history in SQL (list, reopen,
delete), uploads as a background job with per-file results, bad input shown on the page."""

from __future__ import annotations

import pytest

from tests.fakes import make_pdf

QUESTION = "What does the lighthouse keeper light every evening?"


def _chat_script():
    from app.web.chat import chat_page

    chat_page()


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_function(_chat_script, default_timeout=120)


@pytest.fixture
def filled(web_service, tmp_path):
    web_service.create_collection("notes")
    pdf = make_pdf(tmp_path / "keeper.pdf", ["The lighthouse keeper lit the lamp every evening.",
                                             "Honeybees dance to tell their sisters where flowers are."])
    web_service.ingest("notes", [pdf])
    return web_service


def _assistant(at):
    return [m for m in at.chat_message if m.name == "assistant"]


def test_no_collection_says_what_to_do(web_service):
    at = _app().run()
    assert not at.exception
    assert "No collection yet" in at.info[0].value


def test_answer_is_streamed_cited_and_saved_in_sql(filled):
    at = _app().run()
    assert not at.exception and at.sidebar.selectbox[0].value == "notes"
    at.sidebar.radio[0].set_value("rag")
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    labels = [e.label for e in at.expander]
    assert any(label.startswith("[1] keeper.pdf, p") for label in labels), labels
    assert any("Plain RAG | prompt tokens" in c.value for c in at.caption)
    # the page image of the cited PDF page is under the citation
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert "keeper.pdf, page 1 (cited text highlighted)" in captions, captions
    chats = filled.list_chats("notes")
    assert [(c.title, c.n_messages) for c in chats] == [(QUESTION, 2)]
    user, answer = filled.chat_messages(chats[0].id)
    assert (user.role, user.text) == ("user", QUESTION)
    assert answer.role == "assistant" and answer.mode == "rag" and answer.top_k == 4
    assert answer.citations and answer.citations[0].document == "keeper.pdf"
    assert answer.prompt_tokens and answer.total_s is not None and answer.ttft_s is not None
    # a second question goes to the same conversation
    at.chat_input[0].set_value("Why do honeybees dance?").run()
    assert not at.exception
    assert [c.n_messages for c in filled.list_chats("notes")] == [4]


def test_history_is_listed_reopened_and_deleted(filled):
    chat = filled.start_chat("notes")
    filled.record_message(chat.id, "user", QUESTION)
    stream = filled.ask("notes", QUESTION, mode="lloco")
    filled.record_message(chat.id, "assistant", stream.read().text, answer=stream.answer, top_k=4)
    at = _app().run()  # a new browser session: nothing open yet
    assert not at.exception and not at.chat_message
    at.sidebar.button(key=f"chat-{chat.id}").click().run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant"]
    assert at.chat_message[0].markdown[0].value == QUESTION
    assert any(e.label.startswith("[1] keeper.pdf") for e in at.expander)
    assert any(c.value.startswith("LLoCO | prompt tokens") for c in at.caption)
    delete = next(b for b in at.sidebar.button if b.label == "Delete this conversation")
    delete.click().run()
    assert not at.exception and not at.chat_message
    assert filled.list_chats("notes") == []


def test_new_chat_starts_an_empty_conversation(filled):
    at = _app().run()
    at.chat_input[0].set_value(QUESTION).run()
    next(b for b in at.sidebar.button if b.label == "New chat").click().run()
    assert not at.exception and not at.chat_message
    at.chat_input[0].set_value("Why do honeybees dance?").run()
    assert [c.n_messages for c in filled.list_chats("notes")] == [2, 2]


def test_blank_question_and_deleted_collection_are_shown_not_raised(filled, tmp_path):
    at = _app().run()
    at.chat_input[0].set_value("   ").run()
    assert not at.exception and "the question is empty" in at.error[0].value
    filled.delete_collection("notes")  # in another tab
    filled.create_collection("other")
    at.chat_input[0].set_value(QUESTION).run()
    assert not at.exception
    assert "'notes' no longer exists" in at.warning[0].value
    assert at.sidebar.selectbox[0].value == "other" and filled.list_chats("other") == []
    at.chat_input[0].set_value(QUESTION).run()  # an empty collection: said so, no uncited guess recorded
    assert not at.exception and "'other' has no documents yet" in at.error[0].value
    assert filled.list_chats("other") == []
    keeper = tmp_path / "keeper.txt"
    keeper.write_text("The lighthouse keeper lights the lamp every evening. " * 5)
    filled.ingest("other", [keeper])
    at.chat_input[0].set_value(QUESTION).run()  # the app keeps working
    assert not at.exception and [c.title for c in filled.list_chats("other")] == [QUESTION]


def test_upload_ingests_in_the_background_with_per_file_results(filled, tmp_path):
    from app.web.common import get_jobs

    good = make_pdf(tmp_path / "tides.pdf", ["Tides rise and fall twice a day because of the moon."]).read_bytes()
    at = _app().run()
    at.file_uploader[0].set_value([("tides.pdf", good, "application/pdf"),
                                   ("broken.pdf", b"%PDF-1.4 not really", "application/pdf")]).run()
    ingest = next(b for b in at.button if b.label == "Ingest 2 file(s)")
    ingest.click().run()
    assert not at.exception
    jobs = get_jobs().jobs(kind="ingest", collection="notes")
    assert jobs and jobs[0].wait(60) and jobs[0].status == "done"
    at.run()
    assert not at.exception
    assert any("tides.pdf: 1 page(s)" in s.value for s in at.success), [s.value for s in at.success]
    assert any(e.value.startswith("broken.pdf: corrupt") for e in at.error), [e.value for e in at.error]
    docs = {d.filename: d.status for d in filled.list_documents("notes")}
    assert docs == {"keeper.pdf": "ready", "tides.pdf": "ready", "broken.pdf": "failed"}


def test_dollar_signs_are_shown_as_text_not_latex(web_service, tmp_path):
    report = tmp_path / "report.txt"
    report.write_text("Revenue was $2.5 million in 2022 and $3.1 million in 2023.")
    web_service.create_collection("money")
    web_service.ingest("money", [report])
    at = _app().run()
    at.chat_input[0].set_value("What was the revenue, in $?").run()
    assert not at.exception
    assert at.chat_message[0].markdown[0].value == "What was the revenue, in \\$?"
    quoted = [m.value for m in at.markdown if m.value.startswith("> ")]
    assert quoted == ["> Revenue was \\$2\\.5 million in 2022 and \\$3\\.1 million in 2023\\."]
    [chat] = web_service.list_chats("money")
    assert web_service.chat_messages(chat.id)[0].text == "What was the revenue, in $?"  # stored as asked


def test_answers_are_shown_as_text_not_markdown():
    """Issue 27: "14." (a cut decimal) rendered as a list number, "1. 2." as a list."""
    from markdown_it import MarkdownIt

    from app.web.common import plain

    render = MarkdownIt("commonmark").render
    for text in ("14.", "14.3%", "1. first\n2. second", "*not emphasis* and `not code` # no heading", "$5 and $6"):
        html = render(plain(text))
        assert "<ol" not in html and "<ul" not in html and "<em>" not in html and "<code>" not in html
        assert "<h1" not in html
    assert render(plain("14.3%")).strip() == "<p>14.3%</p>"
    assert render(plain("line one\nline two")).strip() == "<p>line one<br />\nline two</p>"  # the break is kept


def test_an_empty_chat_offers_the_demos_sample_questions_and_a_hint_elsewhere(filled, tmp_path):
    from app.core.demo import DEMO_COLLECTION, demo_questions, sample_questions

    at = _app().run()  # "notes": the analyst's own documents, a hint
    assert not at.exception and any("cites the pages" in c.value for c in at.caption)
    assert not [b for b in at.button if b.key and b.key.startswith("sample-question-")]
    filled.create_collection(DEMO_COLLECTION)
    filled.ingest(DEMO_COLLECTION, [make_pdf(tmp_path / "l.pdf", ["Lighthouses guide ships."])])
    at.run().sidebar.selectbox[0].set_value(DEMO_COLLECTION).run()
    samples = [b for b in at.button if b.key and b.key.startswith("sample-question-")]
    assert [b.label for b in samples] == sample_questions(DEMO_COLLECTION)
    assert len(samples) == 3 and {b.label for b in samples} <= {q["question"] for q in demo_questions()}
    samples[1].click().run()  # asked, as if typed
    assert not at.exception and [m.name for m in at.chat_message] == ["user", "assistant"]
    asked = filled.chat_messages(filled.list_chats(DEMO_COLLECTION)[0].id)[0]
    assert (asked.role, asked.text) == ("user", samples[1].label)
    assert not [b for b in at.button if b.key and b.key.startswith("sample-question-")]  # no longer empty
