"""Query-aware snippets and the exact page of a citation."""

from __future__ import annotations

from app.core.citations import SNIPPET_CHARS, best_span, make_citation

TEXT = ("Lighthouses guided ships for centuries. The Fresnel lens was first installed at Cordouan in 1823. "
        "Keepers trimmed the wicks every night. Bees are not lighthouses.")


def test_snippet_is_the_sentence_that_shares_most_words_with_the_question():
    start, end = best_span(TEXT, "Where was the Fresnel lens first installed?")
    assert TEXT[start:end].startswith("The Fresnel lens was first installed at Cordouan in 1823.")
    assert end - start <= SNIPPET_CHARS


def test_snippet_extends_with_following_sentences_up_to_the_limit():
    start, end = best_span(TEXT, "Fresnel lens", limit=100)
    assert TEXT[start:end] == ("The Fresnel lens was first installed at Cordouan in 1823. "
                               "Keepers trimmed the wicks every night.")


def test_overlong_sentence_is_cut_at_a_word_boundary():
    text = "word " * 200
    start, end = best_span(text, "word", limit=50)
    assert end - start <= 50 and text[end - 1] != " " and text[end] == " "


def test_rare_question_words_outweigh_common_ones():
    text = "The lighthouse is tall. The lighthouse is white. The Eddystone rock is far out."
    start, end = best_span(text, "Who engineered the Eddystone lighthouse?", limit=30)
    assert text[start:end] == "The Eddystone rock is far out."


def test_no_overlap_falls_back_to_the_first_sentence():
    start, _ = best_span(TEXT, "zebra")
    assert start == 0


def test_citation_page_is_the_page_of_the_snippet():
    # the chunk starts on page 1 (offset 90) and its second sentence lies on page 2 (offset 120)
    chunk = "End of page one text here. Beginning of page two mentions the Eddystone lighthouse builder."
    cite = make_citation(document="d.pdf", document_id=1, chunk_id=7, chunk_text=chunk, chunk_start=90,
                         page_offsets=[0, 50, 117], score=0.51234, question="Who built Eddystone lighthouse?")
    assert cite.snippet.startswith("Beginning of page two")
    assert (cite.page, cite.page_end) == (3, 3)
    assert cite.char_start == 90 + chunk.index("Beginning") and cite.score == 0.5123
