"""The fact probe: the share of a chunk's numbers and names that its summary vectors let the decoder reproduce."""

from __future__ import annotations

import math

import pytest

from model.fact_probe import fact_spans, facts_reproduced, token_char_spans

TEXT = ("The Eddystone light was built by John Smeaton in 1759. When PepsiCo grew 14.3% in 2023, "
        "it said so. I think revenue was $1,234.5 million.")


def facts(text: str) -> list[str]:
    return [text[a:b] for a, b in fact_spans(text)]


def test_facts_are_numbers_and_names_not_sentence_openers():
    assert facts(TEXT) == ["Eddystone", "John Smeaton", "1759", "PepsiCo", "14.3%", "2023", "1,234.5"]
    assert facts("Smeaton built it.") == []  # a word that opens a sentence may be any word
    assert facts("He met Ada Lovelace and NASA.") == ["Ada Lovelace", "NASA"]


def test_token_spans_cover_the_decoded_text(tiny_decoder):
    ids = tiny_decoder.encode(TEXT)
    spans = token_char_spans(tiny_decoder.tokenizer, ids)
    assert spans[0][0] == 0 and spans[-1][1] == len(tiny_decoder.tokenizer.decode(ids))
    assert all(a <= b for a, b in spans) and all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_a_fact_counts_only_when_every_token_of_it_is_right(tiny_decoder):
    tok = tiny_decoder.tokenizer
    ids = tiny_decoder.encode(TEXT)
    assert facts_reproduced(tok, ids, [True] * len(ids)) == (7, 7)
    assert facts_reproduced(tok, ids, [False] * len(ids)) == (0, 7)
    text = tok.decode(ids)
    start = text.index("1759")
    spans = token_char_spans(tok, ids)
    wrong = [i for i, (a, b) in enumerate(spans) if a < start + 4 and b > start]  # the tokens of "1759"
    flags = [i not in wrong for i in range(len(ids))]
    assert facts_reproduced(tok, ids, flags) == (6, 7)
    with pytest.raises(ValueError, match="flags"):
        facts_reproduced(tok, ids, [True])


def test_eval_compressor_reports_the_fact_probe(tiny_decoder, tmp_path):
    from model.eval_compressor import evaluate_compressor, open_compressor, spec_for

    folder = tmp_path / "data" / "needle" / "PaulGrahamEssays"
    folder.mkdir(parents=True)
    for i in range(12):
        (folder / f"essay{i}.txt").write_text(" ".join(f"In {1900 + i * 7 + j} Ada Lovelace met Charles Babbage "
                                                        f"and {j * 13}% of London agreed." for j in range(30)))
    compressor, training = open_compressor("untrained", tiny_decoder, kappa=2)
    spec = spec_for(training, {"pairs": 2, "batch_size": 2, "sources": ("essays",), "data_root": str(tmp_path / "data"),
                               "min_segment": 24, "max_segment": 32, "next_segment": 8, "heldout_every": 2})
    result = evaluate_compressor(tiny_decoder, compressor, spec)
    assert result["facts"] > 0
    for key in ("fact_recall", "fact_recall_none"):
        assert 0.0 <= result[key] <= 1.0 and not math.isnan(result[key])
