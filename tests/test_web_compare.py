"""The Compare page (AppTest, tiny model) and its ratios (app/core/compare.py): LLoCO and plain RAG
(and optionally full context) answer the same question side by side, with costs and ratios."""

from __future__ import annotations

import pytest

from app.core.answerers import Answer
from app.core.compare import cost_ratios, describe_ratio
from tests.fakes import make_pdf


def _compare_script():
    from app.web.compare import compare_page

    compare_page()


def _app():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_function(_compare_script, default_timeout=120)


@pytest.fixture
def notes(web_service, tmp_path):
    web_service.create_collection("notes")
    pages = ["The lighthouse keeper lit the lamp every evening. " * 6, "Honeybees dance to tell their sisters. " * 6]
    web_service.ingest("notes", [make_pdf(tmp_path / "notes.pdf", pages)])
    return web_service


def _metrics(at) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for m in at.metric:
        out.setdefault(m.label, []).append(m.value)
    return out


def test_ratios_of_two_answers():
    lloco = Answer("lloco", "q", prompt_tokens=40, context_tokens=16, ttft_s=0.1, total_s=1.0)
    rag = Answer("rag", "q", prompt_tokens=400, context_tokens=376, ttft_s=0.4, total_s=1.0)
    assert cost_ratios(lloco, rag) == {"prompt_tokens": 0.1, "context_tokens": 16 / 376, "ttft_s": 0.25,
                                       "total_s": 1.0}
    assert cost_ratios(lloco, Answer("rag", "q", prompt_tokens=0, ttft_s=None))["prompt_tokens"] is None
    assert cost_ratios(Answer("lloco", "q", ttft_s=None), rag)["ttft_s"] is None
    assert describe_ratio(0.1) == "0.10 (10.0x less)" and describe_ratio(2.0) == "2.00 (2.0x more)"
    assert describe_ratio(1.0) == "1.00 (the same)" and describe_ratio(None) == "-"


def test_lloco_and_rag_side_by_side_with_costs_and_ratios(notes):
    at = _app().run()
    assert not at.exception and at.selectbox[0].value == "notes"
    at.text_area[0].set_value("Who lit the lamp every evening?")
    at.button[0].click().run()
    assert not at.exception
    assert [h.value for h in at.subheader][:3] == ["LLoCO (vectors + key sentences)", "LLoCO pure (summary vectors)",
                                                   "Plain RAG (chunk text)"]
    metrics = _metrics(at)
    tokens = [int(v) for v in metrics["Prompt tokens"]]
    context = [int(v) for v in metrics["Context tokens"]]
    assert len(tokens) == 3 and tokens[1] <= tokens[0] < tokens[2]  # pure <= expanded < the chunks' text
    # the prompts differ only in their context part; pure lloco's is kappa vectors per chunk
    assert tokens[2] - tokens[1] == context[2] - context[1] and 0 < context[1] <= context[0]
    assert tokens[0] - tokens[1] == context[0] - context[1]
    assert context[0] <= max(context[1], 0.125 * context[2])  # the expansion stays within its share of the text
    # ratios: lloco / rag then lloco-pure / rag
    assert metrics["context tokens"][0].startswith(f"{context[0] / context[2]:.2f} (")
    assert metrics["context tokens"][1].startswith(f"{context[1] / context[2]:.2f} (")
    assert len(metrics["First token"]) == 3 and all(v.endswith(" s") for v in metrics["Total"])
    ratio = metrics["prompt tokens"][1]
    assert ratio.startswith(f"{tokens[1] / tokens[2]:.2f} (") and ratio.endswith("x less)")
    assert "time to first token" in metrics and "total time" in metrics
    assert any(e.label.startswith("[1] notes.pdf, p") for e in at.expander)
    # the comparison stays on the page through an unrelated rerun
    at.run()
    assert not at.exception and [int(v) for v in _metrics(at)["Prompt tokens"]] == tokens
    assert any("Who lit the lamp every evening?" in m.value for m in at.markdown)


def test_full_context_as_a_third_column(notes):
    at = _app().run()
    at.text_area[0].set_value("Why do honeybees dance?")
    at.checkbox[0].check()
    at.button[0].click().run()
    assert not at.exception
    assert [h.value for h in at.subheader][:4] == ["LLoCO (vectors + key sentences)", "LLoCO pure (summary vectors)",
                                                   "Plain RAG (chunk text)", "Full context"]
    assert len(_metrics(at)["Prompt tokens"]) == 4
    assert len(_metrics(at)["prompt tokens"]) == 4  # each LLoCO mode over RAG and over full


def test_bad_input_is_a_message(notes):
    at = _app().run()
    at.button[0].click().run()
    assert not at.exception and "Type a question first" in at.error[0].value
    notes.delete_collection("notes")  # in another tab
    at.text_area[0].set_value("Who lit the lamp?")
    at.button[0].click().run()
    assert not at.exception and "'notes' no longer exists" in at.warning[0].value
