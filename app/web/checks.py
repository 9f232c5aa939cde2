"""An answer's check against its sources, as the pages show it (issue 23): each claim the sources do
not hold marked in the answer, the verdict under it, and per claim its evidence (document, page,
the supporting sentences) or what the sources lack."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from app.web.common import plain

if TYPE_CHECKING:
    from app.core.second_look import SecondLook
    from app.core.verify import Verification

VERDICT_ICONS = {"supported": ":material/verified:", "partly": ":material/rule:", "unsupported": ":material/report:",
                 "empty": ":material/block:", "no-sources": ":material/search_off:", "refused": ":material/search_off:"}

LEVEL_ICONS = {"declined": ":material/do_not_disturb_on:", "supported": ":material/verified:"}
DECLINED = "The documents don't seem to say."


def marked(text: str, verification: Verification | None) -> str:
    """The answer as Markdown that shows its text as it is (:func:`app.web.common.plain`), each claim
    not found in the sources on an orange background."""
    if verification is None:
        return plain(text)
    if verification.level == "declined":  # the model's words stay visible, but not as an answer
        said = f"  \n:gray[What the model said, not confirmed by them: {plain(text)}]" if text.strip() else ""
        return f"**{DECLINED}** The closest passages are listed below.{said}"
    out, at = [], 0
    for claim in verification.claims:
        if claim.start < at or claim.end > len(text):
            continue  # not this text's claims (never expected: they are checked on the stored text)
        piece = plain(text[claim.start:claim.end])
        out += [plain(text[at:claim.start]), f":orange-background[{piece}]" if claim.status == "unsupported" else piece]
        at = claim.end
    out.append(plain(text[at:]))
    return "".join(out)


def show_second_look(look: SecondLook | None) -> None:
    """What a second look did (the on_doubt setting): which answer is shown, both confidences."""
    if look is None:
        return
    first = "-" if look.first_confidence is None else f"{look.first_confidence:.2f}"
    second = "-" if look.confidence is None else f"{look.confidence:.2f}"
    kept = "replaced the first answer" if look.kept == "second" else "did not beat the first answer, kept"
    st.caption(f":material/autorenew: Second look ({look.kind}): {kept} (confidence {second} vs {first}; "
               f"{look.generated_tokens} more tokens, {look.seconds:.2f} s)")


def show_check(verification: Verification | None, *, details: bool = True) -> None:
    """The verdict in words with its icon; with ``details``, an expander listing each claim with its
    evidence or what the sources lack."""
    if verification is None:
        return
    icon = LEVEL_ICONS.get(verification.level or "", VERDICT_ICONS[verification.verdict])
    st.caption(f"{icon} Checked against the sources: {plain(verification.summary())}")
    if not details or not verification.claims:
        return
    with st.expander("Each claim and its evidence", icon=":material/fact_check:"):
        for claim in verification.claims:
            if claim.status == "supported" and claim.evidence is not None:
                e = claim.evidence
                pages = f"p. {e.page}" if e.page == e.page_end else f"pp. {e.page}-{e.page_end}"
                st.markdown(f":green[:material/check:] {plain(claim.text)}  \n"
                            f"*{plain(e.document)}, {pages}:* {plain(e.snippet)}")
            else:
                lacks = f" — the sources lack: {plain(', '.join(claim.missing))}" if claim.missing else ""
                st.markdown(f":orange[:material/close:] {plain(claim.text)}  \n*not found in the sources*{lacks}")
