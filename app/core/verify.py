"""Answer verification (issue 23): each claim of an answer checked against the text of the chunks the
answer read — every mode, lloco included (it reads summary vectors, but the chunks' exact text is in
the catalog, so the check costs no prompt tokens).

A claim is a sentence of the answer (a short answer is one claim). It is **supported** when the
sources hold what it asserts:

- every number in it (:mod:`app.core.numbers`: "14.3%" = "14.3 percent", "$1.2 billion" =
  "1,200 million", "(3.2)" = "-3.2"; a relative tolerance of 0.5 %, and steps of 1,000 when only
  one side writes a scale: a filing's "1,234" in millions is "$1.234 billion");
- every name in it (a capitalised word not opening the sentence, an acronym, a word with digits);
- at least half of its other content words (cut to 5 letters, as citations match them).

A supported claim comes with its evidence: the sentences of the source that best match it, as a
:class:`app.core.citations.Citation` (document, page, characters, snippet). What a claim lacks is
listed (``missing``), so an analyst sees *why* it is not supported ("14.5%" is not in the sources).
The answer's verdict: supported (every claim), partly, unsupported (none), empty (no claim: an empty
or punctuation-only answer) or no-sources (nothing was retrieved). The signals behind it are kept
(:attr:`Verification.signals`) for the calibrated confidence and abstention built on them.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from app.core.citations import Citation, content_words, make_citation, sentence_spans
from app.core.confidence import PRIOR, ConfidenceModel, Level, Thresholds, level
from app.core.numbers import ParsedNumber, numbers_with_spans, parse_numbers

if TYPE_CHECKING:
    from indexing.retrieval import Hit

ClaimStatus = Literal["supported", "unsupported"]
Verdict = Literal["supported", "partly", "unsupported", "empty", "no-sources", "refused"]
NUMBER_TOLERANCE = 0.005  # relative: "14.3" against a source's "14.29"
CONTENT_SHARE = 0.5  # of a claim's content words (names and numbers aside) the sources must hold

_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9&'-]*[A-Za-z0-9]|[A-Za-z]")
_LOWER_WORDS = re.compile(r"[a-z0-9]+")
_PRONOUNS = frozenset("he she they we you i his her their our your its him them us me there here also".split())
_NAME_STOP = frozenset("I A The This That These Those It Its In On At For Of And But Or As By To From With "
                       "He She They We You His Her Their Our Your Yes No".split())


@dataclass(frozen=True)
class Claim:
    """One sentence of an answer, as checked: where it is in the answer, its status, its evidence when
    supported, and what the sources lack when not."""

    text: str
    start: int  # characters in the answer
    end: int
    status: ClaimStatus
    evidence: Citation | None = None
    missing: tuple[str, ...] = ()  # numbers and names the sources do not hold, then unmatched content words


@dataclass(frozen=True)
class Verification:
    """An answer's claims checked against its sources, its verdict, and the signals behind it."""

    verdict: Verdict
    claims: tuple[Claim, ...] = ()
    signals: dict[str, float] = field(default_factory=dict)
    confidence: float | None = None  # P(right), app.core.confidence (None: not judged)
    level: Level | None = None  # shown as declined, answered or supported (None: not judged)

    @property
    def supported_share(self) -> float:
        return sum(c.status == "supported" for c in self.claims) / len(self.claims) if self.claims else 0.0

    def summary(self) -> str:
        """The verdict in words, as every surface says it: "supported: 2 of 2 claims found in the sources";
        a judged answer leads with its level and confidence ("declined (confidence 0.08): …")."""
        found, n = sum(c.status == "supported" for c in self.claims), len(self.claims)
        claims = f"{n} claim{'s' if n != 1 else ''}"
        if self.level is not None and self.confidence is not None:
            lead = {"declined": "declined: the documents don't seem to say", "answered": "not confirmed",
                    "supported": "supported"}[self.level]
            checked = (f"{found} of {claims} found in the sources" if n else
                       {"no-sources": "nothing was retrieved", "empty": "empty answer",
                        "refused": "the model found no answer in them"}.get(self.verdict, "no claim"))
            return f"{lead} (confidence {self.confidence:.2f}): {checked}"
        return {"supported": f"supported: {found} of {claims} found in the sources",
                "partly": f"partly supported: {found} of {claims} found in the sources",
                "unsupported": f"not supported: none of its {claims} found in the sources",
                "empty": "empty answer: nothing to check",
                "no-sources": "nothing was retrieved to check it against",
                "refused": "the model found no answer in the sources"}[self.verdict]


def verification_json(v: Verification) -> dict:
    """A verification as JSON-ready data, with its verdict in words (``summary``): what the API, the
    CLI's ``--json`` and the catalog carry."""
    return {**asdict(v), "summary": v.summary()}


def verification_from_json(data: dict) -> Verification:
    """The inverse of :func:`verification_json` (an answer read back from the API or the catalog)."""
    claims = tuple(Claim(c["text"], c["start"], c["end"], c["status"],
                         Citation(**c["evidence"]) if c.get("evidence") else None, tuple(c.get("missing") or ()))
                   for c in data.get("claims") or ())
    return Verification(data["verdict"], claims, {k: float(v) for k, v in (data.get("signals") or {}).items()},
                        data.get("confidence"), data.get("level"))


def split_claims(answer: str) -> list[tuple[int, int]]:
    """(start, end) of each claim of ``answer``: its sentences with a word or a digit in them (a
    decimal point does not end one: "14.3%" stays whole)."""
    spans = []
    for start, end in _sentences(answer):
        if re.search(r"[A-Za-z0-9]", answer[start:end]):
            spans.append((start, end))
    return spans


def _sentences(text: str) -> list[tuple[int, int]]:
    # citations.sentence_spans splits at every point; a point between digits is a decimal point
    spans: list[tuple[int, int]] = []
    for start, end in sentence_spans(text):
        if spans and re.search(r"\d\.$", text[spans[-1][0]:spans[-1][1]]) and re.match(r"\d", text[start:end]) \
                and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def names_in(claim: str) -> list[str]:
    """The claim's names: capitalised words that do not open it, acronyms, words with digits in them."""
    found = []
    for i, m in enumerate(_TOKEN.finditer(claim)):
        word = m.group()
        acronym = len(word) >= 2 and word.isupper()
        if (acronym or any(ch.isdigit() for ch in word) or (word[0].isupper() and i > 0)) and word not in _NAME_STOP:
            found.append(word)
    return found


def same_number(claimed: ParsedNumber, source: ParsedNumber, *, rel_tol: float = NUMBER_TOLERANCE) -> bool:
    """Whether a source's number says the claimed one: equal within ``rel_tol``; a percent may be written
    either way; a scale written on one side only may be implicit on the other (steps of 1,000)."""
    if claimed.percent != source.percent and (claimed.marked and source.marked):
        return False  # "14%" is not "$14"
    values = [source.value]
    if claimed.scaled != source.scaled and not (claimed.year_like or source.year_like):
        values += [source.value * 10.0 ** e for e in (-9, -6, -3, 3, 6, 9)]
    if claimed.parenthesized or source.parenthesized:
        values += [-v for v in values]
    return any(math.isclose(claimed.value, v, rel_tol=rel_tol, abs_tol=1e-9) for v in values)


@dataclass
class _Sources:
    """The texts an answer read, with what the checks look up in them, computed once per answer."""

    hits: list[Hit]
    texts: list[str] = field(init=False)
    numbers: list[list[ParsedNumber]] = field(init=False)
    words: list[set[str]] = field(init=False)
    lower: list[str] = field(init=False)
    everywhere: set[str] = field(init=False)  # every source's content words together

    def __post_init__(self) -> None:
        self.texts = [h.chunk.text or "" for h in self.hits]
        self.numbers = [parse_numbers(t) for t in self.texts]
        self.words = [content_words(t) for t in self.texts]
        self.everywhere = set().union(*self.words)
        self.lower = [" " + " ".join(_LOWER_WORDS.findall(t.lower())) + " " for t in self.texts]

    def holds_number(self, n: ParsedNumber) -> list[int]:
        return [i for i, found in enumerate(self.numbers) if any(same_number(n, s) for s in found)]

    def holds_name(self, name: str) -> list[int]:
        key = " " + " ".join(_LOWER_WORDS.findall(name.lower())) + " "
        return [i for i, text in enumerate(self.lower) if key.strip() and key in text]


def check_claim(text: str, start: int, end: int, sources: _Sources) -> Claim:
    """One claim against the sources (see the module's rules)."""
    missing: list[str] = []
    where: dict[int, int] = {}  # source -> how many of the claim's numbers and names it holds
    written = numbers_with_spans(text)
    for n, s, e in written:
        held = sources.holds_number(n)
        if not held:
            missing.append(text[s:e].strip())
        for i in held:
            where[i] = where.get(i, 0) + 1
    for name in names_in(text):
        held = sources.holds_name(name)
        if not held:
            missing.append(name)
        for i in held:
            where[i] = where.get(i, 0) + 1
    named = content_words(" ".join([*names_in(text), *(text[s:e] for _, s, e in written)]))
    content = content_words(text) - named - _PRONOUNS
    lacking = content - sources.everywhere
    share = 1.0 - len(lacking) / len(content) if content else 1.0
    unmatched = list(dict.fromkeys(w for w in _LOWER_WORDS.findall(text.lower())
                                   if content_words(w) & lacking))  # the words as written, each once
    supported = not missing and share >= CONTENT_SHARE and bool(sources.hits)
    if not supported:
        return Claim(text, start, end, "unsupported", missing=tuple(missing + unmatched))
    best = max(range(len(sources.hits)), key=lambda i: (where.get(i, 0), len(content & sources.words[i]), -i))
    hit = sources.hits[best]
    c = hit.chunk
    evidence = make_citation(document=hit.document, document_id=c.document_id, chunk_id=c.id, chunk_text=c.text,
                             chunk_start=c.char_start, page_offsets=hit.page_offsets, score=hit.score,
                             question=text, ocr_pages=hit.ocr_pages)
    return Claim(text, start, end, "supported", evidence=evidence)


def verify_answer(answer: str, question: str, hits: list[Hit], *, token_logprobs: Sequence[float] = (),
                  capped: bool = False) -> Verification:
    """Check ``answer`` (to ``question``) against the text of ``hits``, the chunks it read.

    ``token_logprobs``: the decoder's log p of each generated token (the end token included) and
    ``capped``: whether generation stopped at its token cap — signals for the confidence, not the verdict."""
    sources = _Sources(list(hits))
    refused = refuses(answer or "")
    spans = [] if refused else split_claims(answer or "")  # a refusal claims nothing
    claims = tuple(check_claim(answer[s:e].strip(), s, e, sources) for s, e in spans)
    supported = sum(c.status == "supported" for c in claims)
    if not hits:
        verdict: Verdict = "no-sources"
    elif refused:
        verdict = "refused"
    elif not claims:
        verdict = "empty"
    else:
        verdict = "supported" if supported == len(claims) else ("partly" if supported else "unsupported")
    norm = " ".join(_LOWER_WORDS.findall((answer or "").lower()))
    signals = {
        "claims": float(len(claims)),
        "supported_share": supported / len(claims) if claims else 0.0,
        "verbatim": float(bool(norm) and any(f" {norm} " in text for text in sources.lower)),
        "top_score": max((h.score for h in hits), default=0.0),
        **generation_signals(token_logprobs, capped=capped),
        **text_signals(answer or "", question),
        **question_signals(question, sources),
    }
    return Verification(verdict, claims, signals)


# the decoder's own "the documents don't say" (a reader trained on SQuAD 2.0 answers "unanswerable";
# a 7B says "the context does not mention ..."), on the answer's lower-case words
_REFUSAL = re.compile(r"\b(unanswerable|cannot be answered|not answerable|no answer|(context|documents?|texts?|passages?"
                      r"|sources?|filings?) (does not|doesn t|do not|don t) (say|mention|provide|contain|state|specify))\b")
REFUSAL_WORDS = 16  # a longer answer that says so somewhere still answers something


def refuses(answer: str) -> bool:
    """Whether ``answer`` is the decoder declining by itself: a short answer saying the question
    cannot be answered or that the documents do not say (shown as declined, like nothing retrieved)."""
    words = _LOWER_WORDS.findall(answer.lower())
    return 0 < len(words) <= REFUSAL_WORDS and bool(_REFUSAL.search(" ".join(words)))


def shown_level(verdict: str, confidence: float, thresholds: Thresholds | None) -> Level:
    """The level an answer is shown at: declined when nothing was retrieved or the decoder itself
    declined, else by its confidence against the collection's thresholds
    (:func:`app.core.confidence.level`; supported only when every claim was found)."""
    if verdict in ("no-sources", "refused"):
        return "declined"
    return level(confidence, thresholds, all_found=verdict == "supported")


def generation_signals(token_logprobs: Sequence[float], *, capped: bool) -> dict[str, float]:
    """What the decoder's own probabilities say: the mean and the lowest log p of its tokens (the
    weakest step of a greedy answer), the first token's, and whether it ran to the cap (a loop or a
    ramble); zeros when none were recorded."""
    lp = list(token_logprobs)
    return {"mean_logprob": sum(lp) / len(lp) if lp else 0.0, "min_logprob": min(lp, default=0.0),
            "first_logprob": lp[0] if lp else 0.0, "capped": float(capped), "tokens": float(len(lp))}


def judged(v: Verification, model: ConfidenceModel | None, thresholds: Thresholds | None) -> Verification:
    """``v`` with its confidence (``model``, else :data:`app.core.confidence.PRIOR`) and the level it is
    shown at: declined when nothing was retrieved, the decoder declined, or below the collection's decline threshold,
    supported when every claim was found and the confidence reaches the supported threshold."""

    confidence = (model or PRIOR)(v.signals)
    return replace(v, confidence=confidence, level=shown_level(v.verdict, confidence, thresholds))


# a question's own words that say nothing of its subject (and the cloze questions' instruction)
_ASKING = frozenset(content_words("what which who whom whose when where why how many much does did do is are was were "
                                  "fill blank using documents document according text say says said tell"))


def question_signals(question: str, sources: _Sources) -> dict[str, float]:
    """Whether what the question is about was retrieved at all: the share of its names and numbers
    (``question_names``) and of its other content words (``question_words``) that the chunks read hold;
    1 when it has none. "Who is the CEO of Netflix?" asked of a PepsiCo filing retrieves chunks scored
    like a real question's, but none of them says "Netflix" (issue 23: a question the documents
    cannot answer)."""
    quoted = question.split('"', 1)[1] if question.count('"') >= 2 else question  # a cloze question's sentence
    names = [*names_in(quoted), *(quoted[s:e] for _, s, e in numbers_with_spans(quoted))]
    held = [bool(sources.holds_name(n.removesuffix("'s"))) for n in dict.fromkeys(names)]
    words = content_words(quoted) - content_words(" ".join(names)) - _ASKING - _PRONOUNS
    return {"question_names": sum(held) / len(held) if held else 1.0,
            "question_words": len(words & sources.everywhere) / len(words) if words else 1.0}


_WANTS_NUMBER = re.compile(r"\b(how (many|much|old|long|far|big|large)|what (year|percent\w*|share|amount|number)|when)\b")
_WANTS_NAME = re.compile(r"\b(who(m|se)?|where|which (company|person|city|country))\b")


def text_signals(answer: str, question: str) -> dict[str, float]:
    """What the answer's words say beside its sources: whether it has the kind of thing the question
    asks for (a number for "how many" / "when", a name for "who" / "where"; 0.5 when the question
    does not say), and its length in words (a 135M decoder's long answers ramble)."""
    q = question.lower()
    if _WANTS_NUMBER.search(q):
        kind = float(bool(parse_numbers(answer)))
    elif _WANTS_NAME.search(q):
        kind = float(bool(names_in(answer)) or bool(re.match(r"\s*[A-Z]", answer)))
    else:
        kind = 0.5
    return {"type_match": kind, "words": float(len(answer.split()))}
