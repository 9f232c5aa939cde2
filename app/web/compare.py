"""The Compare page: one question answered by LLoCO (summary vectors + the question's key sentences),
pure LLoCO (summary vectors only) and plain RAG (and optionally full context) side by side, each
streamed, with prompt and context tokens, time to first token, total time and the ratios.

The modes run one after the other, never at once, so each one's timings are its own. The last
comparison stays on the page (session state) until the next one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app.core.compare import COSTS, cost_ratios, describe_ratio
from app.config import COMPARED_MODES
from app.web.auth import get_acting
from app.web.checks import marked, show_check, show_second_look
from app.web.common import (
    MODE_LABELS,
    collection_picker,
    fmt_s,
    get_service,
    plain,
    plain_stream,
    show_citations,
)
from model.errors import LlocoError

if TYPE_CHECKING:
    from app.core.answerers import Answer
    from app.accounts.access import ActingService  # the page acts as the signed-in user

RESULT_KEY = "compare_result"


def _metrics(answer: Answer) -> None:
    tokens, context = st.columns(2)  # two by two: four metrics in half the page would be cut off
    tokens.metric("Prompt tokens", answer.prompt_tokens)
    context.metric("Context tokens", answer.context_tokens, help="the part of the prompt that stands for the chunks")
    first, total = st.columns(2)
    first.metric("First token", fmt_s(answer.ttft_s))
    total.metric("Total", fmt_s(answer.total_s))
    show_check(answer.verification, details=False)  # each mode's verdict (issue 23)
    show_second_look(answer.second_look)


def _stream(service: ActingService, name: str, question: str, mode: str, top_k: int) -> Answer | None:
    """Stream one mode's answer into the current container; None (and a message) on bad input."""
    try:
        stream = service.ask(name, question, mode=mode, top_k=top_k)  # type: ignore[arg-type]
        pieces = iter(stream)
        try:
            st.write_stream(plain_stream(pieces))
        finally:
            pieces.close()  # releases the decoder in this thread, even if the run was stopped
    except LlocoError as exc:
        st.error(str(exc))
        return None
    _metrics(stream.answer)
    return stream.answer


def _name(mode: str) -> str:
    return MODE_LABELS[mode].split(" (")[0]


def show_ratios(answers: dict[str, Answer]) -> None:
    """Each LLoCO mode's costs over RAG's and full context's."""
    for mode in ("lloco", "lloco-pure"):
        if mode not in answers:
            continue
        for other in ("rag", "full"):
            if other not in answers:
                continue
            ratios = cost_ratios(answers[mode], answers[other])
            st.markdown(f"**{_name(mode)} / {_name(other)}**")
            items = list(COSTS.items())
            for start in range(0, len(items), 2):  # "0.03 (30.5x less)" needs a quarter of the page
                for column, (key, label) in zip(st.columns(2), items[start:start + 2], strict=False):
                    column.metric(label, describe_ratio(ratios[key]))


def show_result(service: ActingService, result: dict) -> None:
    """A stored comparison: each answer with its costs, the ratios and the retrieved chunks."""
    answers: dict[str, Answer] = result["answers"]
    st.markdown(f"**Question:** {plain(result['question'])}")
    for column, (mode, answer) in zip(st.columns(len(answers)), answers.items(), strict=True):
        with column:
            st.subheader(MODE_LABELS[mode])
            st.markdown(marked(answer.text, answer.verification) or "_(empty answer)_")
            _metrics(answer)
    show_ratios(answers)
    first = next(iter(answers.values()))
    st.subheader(f"Retrieved chunks ({len(first.citations)}, the same for every mode)")
    show_citations(service, first.citations, images=False)


def compare_page() -> None:
    service = get_acting(get_service())
    st.title("Compare LLoCO with plain RAG")
    st.caption("The same question, the same retrieved chunks and the same decoder: LLoCO reads each chunk as a few "
               "summary vectors plus the sentences that bear on the question (within "
               f"{service.settings.expand_tokens} tokens and {service.settings.expand_share:.1%} of the chunks' text), "
               "pure LLoCO the summary vectors alone, plain RAG the chunks' text.")
    name = collection_picker(service, "compare-collection")
    if name is None:
        return
    with st.form("compare"):
        question = st.text_area("Question", height=80, placeholder="Ask something the collection answers")
        left, right = st.columns(2)
        top_k = left.slider("Chunks retrieved (top-k)", 1, 10, service.settings.top_k)
        with_full = right.checkbox("Also answer from the full document", value=False,
                                   help="Reads the whole best-matching document: slow on long ones.")
        submitted = st.form_submit_button("Compare", type="primary")
    if not submitted:
        if RESULT_KEY in st.session_state and st.session_state[RESULT_KEY]["collection"] == name:
            show_result(service, st.session_state[RESULT_KEY])
        return
    if not question.strip():
        st.error("Type a question first.")
        return
    st.session_state.pop(RESULT_KEY, None)
    modes = [*COMPARED_MODES, *(["full"] if with_full else [])]
    answers: dict[str, Answer] = {}
    for column, mode in zip(st.columns(len(modes)), modes, strict=True):
        with column:
            st.subheader(MODE_LABELS[mode])
            answer = _stream(service, name, question, mode, top_k)
            if answer is None:
                return
            answers[mode] = answer
    show_ratios(answers)
    st.session_state[RESULT_KEY] = {"collection": name, "question": question.strip(), "answers": answers}
    first = answers["lloco"]
    st.subheader(f"Retrieved chunks ({len(first.citations)}, the same for every mode)")
    show_citations(service, first.citations, images=False)
