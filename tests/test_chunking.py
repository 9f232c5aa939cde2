"""indexing/chunking.py with the tiny tokenizer: exact spans, page ranges, token budgets, overlap."""

from __future__ import annotations

import logging
import random

import pytest

from indexing.chunking import PAGE_SEPARATOR, Chunk, chunk_pages, join_pages, page_of

# distinctive words (tiny-vocab friendly, but unique per page) make a chunk's page checkable by eye
PAGE_WORDS = ["lighthouse", "honeybees", "tides", "coffee", "yemen", "moon"]


@pytest.fixture(autouse=True)
def _quiet_splitter():
    # llama-index warns that metadata is "close to chunk size" for the tiny chunk sizes used here
    logging.disable(logging.WARNING)
    yield
    logging.disable(logging.NOTSET)


@pytest.fixture
def encode(tiny_decoder):
    return tiny_decoder.encode


def _pages(n_pages: int = 5, sentences: int = 12) -> list[str]:
    """Page p holds only sentences naming PAGE_WORDS[p] + a number: '<word><i> keeper lit the lamp.'"""
    return [" ".join(f"{PAGE_WORDS[p]}{i} keeper lit the lamp." for i in range(sentences)) for p in range(n_pages)]


def _random_pages(seed: int) -> list[str]:
    rng = random.Random(seed)
    vocab = "the lighthouse keeper lit lamp every evening honeybees dance tides rise coffee yemen moon".split()
    pages = []
    for _ in range(rng.randint(1, 5)):
        words = []
        for _ in range(rng.randint(0, 120)):
            word = rng.choice(vocab) + str(rng.randint(0, 999))  # numbered: no chunk repeats another's text
            if rng.random() < 0.15:
                word += "."
            elif rng.random() < 0.03:
                word += "\n"
            words.append(word)
        pages.append(" ".join(words))
    return pages


def _expected_pages(chunk: Chunk, pages: list[str], offsets: list[int]) -> tuple[int, int]:
    """Independent reference: the 1-based pages whose own text (not the separator) the span touches."""
    hit = [p + 1 for p, start in enumerate(offsets) if start < chunk.char_end and chunk.char_start < start + len(pages[p])]
    assert hit, f"chunk {chunk.ordinal} touches no page text"
    return min(hit), max(hit)


def _check_invariants(chunks: list[Chunk], pages: list[str], encode) -> None:
    text, offsets = join_pages(pages)
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert 0 <= c.char_start < c.char_end <= len(text)
        assert c.text == text[c.char_start:c.char_end]
        assert c.text.strip()
        assert c.token_ids == encode(c.text)
        assert (c.page_start, c.page_end) == _expected_pages(c, pages, offsets)
        assert 1 <= c.page_start <= c.page_end <= len(pages)
    starts = [c.char_start for c in chunks]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    # together the chunks cover every non-blank character of the document
    covered = [False] * len(text)
    for c in chunks:
        covered[c.char_start:c.char_end] = [True] * (c.char_end - c.char_start)
    missing = [i for i, ch in enumerate(text) if not ch.isspace() and not covered[i]]
    assert not missing, f"text not in any chunk span: {text[missing[0]:missing[0] + 30]!r}"


# --- join_pages / page_of ---------------------------------------------------------------------

def test_join_pages_offsets():
    text, offsets = join_pages(["abc", "", "de", "f"])
    assert text == "abc" + PAGE_SEPARATOR + PAGE_SEPARATOR + "de" + PAGE_SEPARATOR + "f"
    assert offsets == [0, 5, 7, 11]
    for page, start in zip(["abc", "", "de", "f"], offsets, strict=True):
        assert text[start:start + len(page)] == page
    assert join_pages([]) == ("", [])
    assert join_pages(["only"]) == ("only", [0])


def test_page_of_edges():
    pages = ["abcdefgh", "ijklmnopqrst", "uv"]
    text, offsets = join_pages(pages)
    assert offsets == [0, 10, 24]
    assert page_of(offsets, 0) == 1
    assert page_of(offsets, 7) == 1  # last char of page 1
    assert page_of(offsets, 8) == 1  # the separator after a page belongs to it
    assert page_of(offsets, 9) == 1
    assert page_of(offsets, 10) == 2  # first char of page 2
    assert page_of(offsets, 21) == 2
    assert page_of(offsets, 24) == 3
    assert page_of(offsets, len(text) - 1) == 3
    assert page_of(offsets, 10_000) == 3  # past the end: the last page
    assert page_of([0], 0) == 1 and page_of([0], 5) == 1
    for i, ch in enumerate(text):  # agrees with a brute-force lookup on every page character
        if ch not in PAGE_SEPARATOR:
            assert pages[page_of(offsets, i) - 1][i - offsets[page_of(offsets, i) - 1]] == ch


def test_page_of_with_empty_pages():
    # an empty page shares its offset neighbourhood: characters after it belong to the next non-empty page
    text, offsets = join_pages(["ab", "", "cd"])
    assert offsets == [0, 4, 6]
    assert page_of(offsets, text.index("c")) == 3
    assert page_of(offsets, text.index("b")) == 1


# --- chunk_pages ------------------------------------------------------------------------------

@pytest.mark.parametrize(("chunk_tokens", "overlap"), [(32, 0), (48, 8), (64, 16), (200, 20)])
def test_chunks_are_exact_spans_with_correct_pages(encode, chunk_tokens, overlap):
    pages = _pages()
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=chunk_tokens, overlap=overlap)
    assert len(chunks) >= len(pages) - 1
    _check_invariants(chunks, pages, encode)
    for c in chunks:
        assert len(c.token_ids) <= chunk_tokens


def test_each_distinctive_word_is_in_a_chunk_on_its_page(encode):
    pages = _pages()
    text, offsets = join_pages(pages)
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=48, overlap=8)
    for p, word in enumerate(PAGE_WORDS[:len(pages)], start=1):
        for i in range(12):
            token = f"{word}{i} "  # trailing space: "tides1 " is not a prefix match of "tides10"
            holders = [c for c in chunks if token in c.text + " "]
            assert holders, f"{token!r} is in no chunk"
            for c in holders:
                assert c.page_start <= p <= c.page_end, (token, c.page_start, c.page_end)
                where = c.char_start + (c.text + " ").index(token)
                assert page_of(offsets, where) == p
    # chunks made only of one page's sentences name exactly that page
    for c in chunks:
        on = {p for p, word in enumerate(PAGE_WORDS, start=1) if word in c.text}
        assert on == set(range(c.page_start, c.page_end + 1)), (c.text, c.page_start, c.page_end)


def test_chunks_crossing_a_page_boundary(encode):
    pages = _pages()
    text, offsets = join_pages(pages)
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=64, overlap=16)
    crossing = [c for c in chunks if c.page_start < c.page_end]
    assert crossing, "this layout should give at least one chunk spanning two pages"
    for c in crossing:
        boundary = offsets[c.page_end - 1]
        assert c.char_start < boundary < c.char_end
        assert PAGE_SEPARATOR in c.text
        assert PAGE_WORDS[c.page_start - 1] in c.text and PAGE_WORDS[c.page_end - 1] in c.text
    # a chunk that starts exactly at a page start is on that page, one that ends at a page's end is not on the next
    starts_at = [c for c in chunks if c.char_start in offsets]
    assert starts_at
    for c in starts_at:
        assert c.page_start == offsets.index(c.char_start) + 1
    ends_at = [c for c in chunks if any(c.char_end == o + len(pg) for o, pg in zip(offsets, pages, strict=True))]
    assert ends_at
    for c in ends_at:
        page = next(i for i, (o, pg) in enumerate(zip(offsets, pages, strict=True), start=1) if c.char_end == o + len(pg))
        assert c.page_end == page


def test_one_chunk_per_page_when_pages_fit(encode):
    pages = _pages(n_pages=4, sentences=3)
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=40, overlap=0)
    text, offsets = join_pages(pages)
    # each page is ~36 tokens, two pages never fit: one chunk per page, exactly the page's text
    assert [(c.page_start, c.page_end) for c in chunks] == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert [c.text for c in chunks] == pages
    assert [c.char_start for c in chunks] == offsets


def test_overlap_between_consecutive_chunks(encode):
    pages = _pages()
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=64, overlap=16)
    assert len(chunks) > 3
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.char_start < a.char_end, (a.ordinal, b.ordinal)  # they share text
        shared = a.text[b.char_start - a.char_start:]
        assert shared.strip() and b.text.startswith(shared)
        assert len(encode(shared.strip())) <= 16 + 2  # about the requested overlap, not more


def test_no_overlap_when_zero(encode):
    pages = _pages()
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=32, overlap=0)
    assert len(chunks) > 5
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.char_start >= a.char_end


def test_smaller_chunks_give_more_chunks(encode):
    pages = _pages()
    counts = [len(chunk_pages(pages, encode=encode, chunk_tokens=n, overlap=0)) for n in (32, 64, 128)]
    assert counts[0] > counts[1] > counts[2]


def test_empty_and_blank_pages(encode):
    pages = ["", "lighthouse0 keeper lit the lamp. lighthouse1 keeper lit the lamp.", "   ", "",
             "tides0 keeper lit the lamp."]
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=48, overlap=8)
    _check_invariants(chunks, pages, encode)
    assert {c.page_start for c in chunks} <= {2, 5}
    assert any(c.page_start == 2 for c in chunks) and any(c.page_end == 5 for c in chunks)
    assert chunk_pages(["", "  \n "], encode=encode, chunk_tokens=48, overlap=8) == []


def test_unicode_text(encode):
    pages = ["Crème brûlée et café au lait. " * 6, "Naïve façade, ünïcödé ✓ and 日本語のテキスト。" * 3]
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=48, overlap=8)
    text, _ = join_pages(pages)
    for c in chunks:
        assert c.text == text[c.char_start:c.char_end]
        assert c.token_ids == encode(c.text)
    assert chunks[0].page_start == 1 and chunks[-1].page_end == 2


@pytest.mark.parametrize("seed", range(6))
def test_invariants_on_random_sentence_text(encode, seed):
    pages = _random_pages(seed)
    for chunk_tokens, overlap in [(24, 4), (48, 8), (96, 24)]:
        chunks = chunk_pages(pages, encode=encode, chunk_tokens=chunk_tokens, overlap=overlap)
        _check_invariants(chunks, pages, encode)


def test_repeated_phrase_chunk_is_placed_on_its_own_page(encode):
    pages = ["lamp Thank you. keeper.", "Thank you."]
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=16, overlap=0)
    text, offsets = join_pages(pages)
    assert [c.text for c in chunks] == ["lamp Thank you. keeper.", "Thank you."]
    assert (chunks[1].char_start, chunks[1].page_start, chunks[1].page_end) == (offsets[1], 2, 2)


def test_chunks_never_exceed_the_token_budget_without_punctuation(encode):
    words = "the lighthouse keeper lit the lamp every evening and the honeybees dance where the flowers are".split()
    page = " ".join(words[i % len(words)] for i in range(40))
    chunks = chunk_pages([page], encode=encode, chunk_tokens=16, overlap=0)
    assert max(len(c.token_ids) for c in chunks) <= 16


def test_a_long_run_without_spaces_is_cut_quickly_with_exact_spans(encode):
    """Issue 12, bug 6: a 10 MB text without spaces was still chunking after 11 minutes (the
    sentence splitter cuts such a run character by character)."""
    import time

    from indexing.chunking import MAX_RUN

    pages = ["A short opening sentence. Another one follows.", "x" * 400_000 + " then prose again, in words."]
    started = time.perf_counter()
    chunks = chunk_pages(pages, encode=encode, chunk_tokens=64, overlap=8)
    assert time.perf_counter() - started < 30
    _check_invariants(chunks, pages, encode)  # exact spans and pages, for citations
    assert all(len(c.token_ids) <= 64 for c in chunks)
    run = [c for c in chunks if set(c.text) == {"x"}]
    assert sum(len(c.text) for c in run) == 400_000 and all(c.page_start == 2 for c in run)
    assert chunks[0].text.startswith("A short opening") and chunks[-1].text.endswith("in words.")
    assert MAX_RUN < 400_000
