"""Follow-up questions made standalone (issue 13, item 5): "and in 2022?" after "What was the
revenue in 2023?" is asked — retrieved and answered — as "What was the revenue in 2022?".

Two ways, by the ``condense`` setting: ``rule`` (the default: no model call, predictable) and
``decoder`` (the decoder rewrites the question from the conversation, as llama-index's
CondenseQuestionChatEngine does; its rewrite is kept only when it looks like a question, else the
rule's is used — a small decoder often rewrites badly). ``off`` asks every question as it is.

The rule: a question is a follow-up when it opens with a connector ("and", "what about", ...), leans
on a pronoun ("it", "they", ...) with at most four content words, or is a fragment of at most two
(a whole question naming its own subject, "Who is the CEO of Netflix?", is not: :func:`is_follow_up`). A short
follow-up naming a year, a quarter, a number or a name takes the place of the same kind of thing in
the previous standalone question; a pronoun is replaced by the previous question's subject (its
last name, else its first "the ..." phrase); anything else is appended to the previous question,
which keeps retrieval on its topic (so a change of topic is better asked in full).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal

CondenseMode = Literal["rule", "decoder", "off"]  # the condense setting (app.config)
HISTORY = 4  # earlier questions a follow-up is read against
_CONNECTOR = re.compile(r"^\s*(?:and|but|also|so|then|what about|how about|and what about|what of|same for|"
                        r"and for|and in|and the)\b[\s,]*", re.IGNORECASE)
_QUESTION_START = re.compile(r"^\s*(?:what|who|whom|whose|when|where|which|why|how|is|are|was|were|do|does|did|can|"
                             r"could|will|would|should|has|have|had)\b", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][\w'’-]*|\d[\d,.]*")
_STOP = frozenset("""a an and are as at be but by did do does for from had has have how i in is it its of on or so
than that the their them then there these they this to was were what when where which who whom why will with
would about also same""".split())
PRONOUNS = frozenset("it its they them their this that these those he she his her him".split())
_KINDS = {  # a short follow-up of one of these kinds replaces the same kind in the previous question
    "year": re.compile(r"\b(?:19|20)\d{2}\b"),
    "quarter": re.compile(r"\b(?:Q[1-4]|(?:first|second|third|fourth) quarter)\b", re.IGNORECASE),
    "number": re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?%?"),
    "name": re.compile(r"\b[A-Z][\w-]*(?:\s+[A-Z][\w-]*)*"),  # "PepsiCo" of "PepsiCo's": the possessive stays
}


def _content(text: str) -> list[str]:
    return [w for w in _WORD.findall(text) if w.lower() not in _STOP]


def is_follow_up(question: str) -> bool:
    """Does ``question`` lean on the conversation before it? A connector or a pronoun says so; a
    short fragment ("revenue in 2021?") too; a whole question that names its own subject — it opens
    with a question word or an auxiliary and has two content words, as "Who is the CEO of Netflix?" —
    stands alone (issue 27: a change of topic must not be glued onto the last question)."""
    words = _content(question)
    pronoun = any(w.lower() in PRONOUNS for w in _WORD.findall(question))
    if _CONNECTOR.match(question) or (pronoun and len(words) <= 4):
        return True
    whole = bool(_QUESTION_START.match(question)) and len(words) >= 2 and not pronoun
    return len(words) <= 2 and not whole


def _kind(tail: str) -> str | None:
    """The kind of a short follow-up's subject ('2022', 'Q3', 'Nike'), when it is one whole thing."""
    for kind, pattern in _KINDS.items():
        match = pattern.fullmatch(tail.strip())
        if match:
            return kind
    return None


def _subject(question: str) -> str | None:
    """The previous question's subject for a pronoun: its last name with the noun after it ("the
    Eddystone lighthouse"), else its last content words."""
    names = [m for m in _KINDS["name"].finditer(question) if m.start() > 0 and m.group().lower() not in _STOP]
    if names:
        last = names[-1]
        noun = re.match(r"\s+([a-z][a-z-]+)", question[last.end():])
        return last.group() + (f" {noun.group(1)}" if noun and noun.group(1) not in _STOP else "")
    phrase = re.search(r"\bthe\s+([a-z][a-z-]*(?:\s+[a-z][a-z-]*)?)", question)  # "the coffee plant"
    if phrase:
        words = [w for w in phrase.group(1).split() if w not in _STOP]
        if words:
            return "the " + " ".join(words)
    words = _content(question)
    return " ".join(words[-2:]) if words else None


def condense_rule(question: str, previous: str) -> str:
    """``question`` as a standalone question, given the previous standalone question."""
    tail = _CONNECTOR.sub("", question).strip().rstrip("?.! ").strip()
    bare = re.sub(r"^(?:(?:in|for|of|at|on|the)\s+)+", "", tail, flags=re.IGNORECASE)  # "in the Q3" -> "Q3"
    if _kind(bare):
        tail = bare
    base = previous.strip().rstrip("?").strip()
    kind = _kind(tail)
    if kind:
        found = list(_KINDS[kind].finditer(base))
        if kind == "name":
            found = [m for m in found if m.start() > 0]  # not the question's first word
        if found:
            last = found[-1]
            return f"{base[:last.start()]}{tail}{base[last.end():]}?"
    words = _WORD.findall(question)
    pronoun = next((w for w in words if w.lower() in PRONOUNS), None)
    if pronoun and (subject := _subject(previous)):
        swapped = re.sub(rf"\b{re.escape(pronoun)}\b", subject, question.strip(), count=1)
        return swapped if swapped.endswith("?") else swapped.rstrip(".! ") + "?"
    return f"{base}: {tail}?" if tail else f"{base}?"


DECODER_PROMPT = ("Rewrite the last question so that it can be understood without the conversation. "
                  "Answer with the rewritten question only.\n\n{conversation}\nLast question: {question}\n"
                  "Standalone question:")


def condense(question: str, history: list[str], *, mode: CondenseMode = "rule",
             generate: Callable[[str], str] | None = None) -> str:
    """The standalone form of ``question`` after the conversation's earlier (standalone) questions
    ``history``, oldest first; ``question`` itself when it is not a follow-up (or ``mode`` is off).
    ``generate(prompt) -> text``: the decoder, for ``mode`` 'decoder'."""
    question = question.strip()
    if mode == "off" or not history or not is_follow_up(question):
        return question
    ruled = condense_rule(question, history[-1])
    if mode == "decoder" and generate is not None:
        conversation = "\n".join(f"Question: {q}" for q in history[-HISTORY:])
        rewritten = generate(DECODER_PROMPT.format(conversation=conversation, question=question)).strip().split("\n")[0]
        if rewritten.endswith("?") and 3 <= len(_content(rewritten)) and len(rewritten) <= 400:
            return rewritten
    return ruled


def standalone(question: str, history: list[str], *, mode: CondenseMode = "rule",
               generate: Callable[[str], str] | None = None) -> str:
    """:func:`condense` after a conversation given as typed: its last :data:`HISTORY` questions are
    each made standalone in turn first, so a follow-up of a follow-up reads right."""
    previous: list[str] = []
    for earlier in history[-HISTORY:]:
        previous.append(condense(earlier, previous, mode=mode, generate=generate))
    return condense(question, previous, mode=mode, generate=generate)
