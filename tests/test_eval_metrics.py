"""Answer metrics of app.eval.metrics, on hand-computed cases."""

from __future__ import annotations

import math

import pytest

from app.eval.metrics import (
    choice_accuracy,
    exact_match,
    extract_choice_letter,
    hotpot_f1,
    is_no_answer,
    needle_match,
    normalize_answer,
    qasper_f1,
    reference_letter,
    rouge_geometric_mean,
    rouge_max,
    rouge_scores,
    squad_v2_scores,
    token_f1,
)
from app.core.numbers import parse_numbers, stated_scales
from app.eval.numbers import numeric_match, numeric_match_by
from app.eval.records import EvalQuestion
from app.eval.tasks import score_prediction


def test_normalize_answer_squad_rules() -> None:
    assert normalize_answer("The  Cat, an Apple & a DOG!") == "cat apple dog"
    assert normalize_answer("  ") == ""
    # Articles only as whole words: "theory" and "another" keep their letters.
    assert normalize_answer("Another theory") == "another theory"


def test_token_f1_hand_computed() -> None:
    # pred tokens {new, york, city}, ref {new, york}: P = 2/3, R = 1, F1 = 0.8.
    assert token_f1("New York City", ["New York"]) == pytest.approx(0.8)
    # Best over references.
    assert token_f1("New York City", ["Boston", "new york city."]) == 1.0
    # Repeated tokens are clipped: pred [x, x, y] vs ref [x, y, y]: common = x:1 + y:1 = 2,
    # P = R = 2/3.
    assert token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
    assert token_f1("Paris", ["London"]) == 0.0


def test_empty_prediction_scores_zero_everywhere() -> None:
    for pred in ("", "   ", "\n"):
        assert token_f1(pred, ["x"]) == 0.0
        assert exact_match(pred, ["x"]) == 0.0
        assert hotpot_f1(pred, ["yes"]) == 0.0
        assert qasper_f1(pred, ["unanswerable"]) == 0.0
        assert squad_v2_scores(pred, ["France"]) == (0.0, 0.0)
        assert numeric_match(pred, "12") == 0.0
        assert needle_match(pred, "123") == 0.0
        assert choice_accuracy(pred, "(B) text") == 0.0
        assert rouge_scores(pred, "some reference") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert token_f1("anything", []) == 0.0


def test_exact_match_after_normalisation() -> None:
    assert exact_match("the Eiffel Tower.", ["Eiffel tower"]) == 1.0
    assert exact_match("Eiffel", ["Eiffel tower", "Tower"]) == 0.0
    assert exact_match("tower", ["Eiffel tower", "Tower"]) == 1.0


def test_hotpot_f1_cuts_at_first_full_stop_and_handles_yes_no() -> None:
    assert hotpot_f1("Chicago Bulls. They won six titles.", ["Chicago Bulls"]) == 1.0
    # A decimal point does not cut: tokens [35, million, people] vs [35, million]
    # (punctuation removed) -> P = 2/3, R = 1, F1 = 0.8.
    assert hotpot_f1("3.5 million people. Roughly.", ["3.5 million"]) == pytest.approx(0.8)
    assert hotpot_f1("Yes. Both are American.", ["yes"]) == 1.0
    assert hotpot_f1("no", ["yes"]) == 0.0
    # A yes/no prediction against a span answer scores 0, not partial overlap.
    assert hotpot_f1("yes", ["yes it is"]) == 0.0
    assert hotpot_f1("John de Mol Jr.", ["John de Mol Jr."]) == 1.0


def test_no_answer_phrases() -> None:
    for text in ("", "unanswerable", "No answer.", "N/A", "The question cannot be answered from the text."):
        assert is_no_answer(text), text
    for text in ("Paris", "Normans", "answer is yes"):
        assert not is_no_answer(text), text


def test_squad_v2_unanswerable_and_answerable() -> None:
    assert squad_v2_scores("", []) == (1.0, 1.0)
    assert squad_v2_scores("Unanswerable", []) == (1.0, 1.0)
    assert squad_v2_scores("n/a", []) == (1.0, 1.0)
    assert squad_v2_scores("France", []) == (0.0, 0.0)
    assert squad_v2_scores("France", ["France", "in France"]) == (1.0, 1.0)
    em, f1 = squad_v2_scores("northern France", ["France"])
    assert em == 0.0 and f1 == pytest.approx(2 / 3)  # P = 1/2, R = 1
    assert squad_v2_scores("unanswerable", ["France"]) == (0.0, 0.0)


def test_qasper_f1_labels_and_spans() -> None:
    assert qasper_f1("Yes, they do.", ["Yes"]) == 1.0
    assert qasper_f1("No", ["Yes"]) == 0.0
    assert qasper_f1("This cannot be answered from the paper.", ["Unanswerable"]) == 1.0
    assert qasper_f1("BiLSTM", ["Unanswerable"]) == 0.0
    # Max over references: label miss, span F1 = 1 for the second.
    assert qasper_f1("English", ["Yes", "English"]) == 1.0
    # pred {linear, svm, cnn} vs ref {linear, svm}: P = 2/3, R = 1 -> 0.8.
    assert qasper_f1("linear SVM, CNN", ["linear SVM"]) == pytest.approx(0.8)


def test_rouge_hand_computed_pair() -> None:
    # pred: the cat sat on the mat (6) / ref: the cat lay on the mat (6)
    # unigrams overlap: the x2, cat, on, mat = 5 -> 5/6
    # bigrams: {the cat, cat sat, sat on, on the, the mat} vs {the cat, cat lay, lay on, on the,
    #          the mat}: overlap 3 of 5 each -> 0.6
    # LCS: the cat on the mat = 5 -> 5/6
    s = rouge_scores("The cat sat on the mat.", "the cat lay on the mat")
    assert s["rouge1"] == pytest.approx(5 / 6)
    assert s["rouge2"] == pytest.approx(0.6)
    assert s["rougeL"] == pytest.approx(5 / 6)
    assert rouge_geometric_mean(s) == pytest.approx(((5 / 6) ** 2 * 0.6) ** (1 / 3))


def test_rouge_l_differs_from_rouge_1_on_order() -> None:
    # Same words in reverse order: every unigram matches, no bigram does, LCS = 1 of 4.
    s = rouge_scores("w x y z", "z y x w")
    assert s == {"rouge1": 1.0, "rouge2": 0.0, "rougeL": pytest.approx(0.25)}
    assert rouge_geometric_mean(s) == 0.0


def test_rouge_max_over_references_per_metric() -> None:
    best = rouge_max("w x y z", ["z y x w", "w x"])
    # rouge1: max(1.0, F(2/4, 2/2) = 2/3) = 1; rouge2: second ref has "w x": P = 1/3, R = 1 -> 0.5;
    # rougeL: second ref LCS 2 -> P = 1/2, R = 1 -> 2/3.
    assert best["rouge1"] == 1.0
    assert best["rouge2"] == pytest.approx(0.5)
    assert best["rougeL"] == pytest.approx(2 / 3)
    assert rouge_max("x", []) == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("(B)", "B"),
        ("B)", "B"),
        ("Answer: B", "B"),
        ("answer: d", "D"),
        ("The answer is (C) because the budget was small.", "C"),
        ("b.", "B"),
        ("D", "D"),
        ("A", "A"),
        ("C: It was published", "C"),
        ("B They were Clinton-haters", "B"),
        ("I think it's C.", "C"),
        ("**C**", "C"),
        ("The correct option is c)", "C"),
        ("Between (A) and (C), the answer is (C).", "C"),
        ("(a) They know", "A"),
        ("a dog barked", None),
        ("The answer is a bit unclear", None),
        ("none of them", None),
        ("", None),
    ],
)
def test_extract_choice_letter_variants(text: str, letter: str | None) -> None:
    assert extract_choice_letter(text) == letter


def test_extract_choice_letter_respects_n_choices() -> None:
    assert extract_choice_letter("(E)") is None
    assert extract_choice_letter("(E)", n_choices=5) == "E"


def test_choice_accuracy() -> None:
    assert reference_letter("(B) They were Clinton-haters") == "B"
    assert reference_letter("C") == "C"
    assert choice_accuracy("(B)", "(B) They were Clinton-haters") == 1.0
    assert choice_accuracy("The answer is (C).", "(B) They were Clinton-haters") == 0.0
    assert choice_accuracy("b", "B") == 1.0
    # No letter, but the option's text: counts.
    assert choice_accuracy("they were clinton-haters", "(B) They were Clinton-haters") == 1.0
    assert choice_accuracy("no idea", "(B) They were Clinton-haters") == 0.0


def test_parse_numbers_units_commas_signs_scales() -> None:
    values = [n.value for n in parse_numbers("Revenue rose to $1,234.5 million from (2.5) in FY2022; 30% and 2bn")]
    assert values == [1_234_500_000.0, -2.5, 30.0, 2_000_000_000.0]
    (pct,) = parse_numbers("-3.7%")
    assert pct.value == -3.7 and pct.percent
    assert [n.value for n in parse_numbers("12 months, 1,2,3")] == [12.0, 1.0, 2.0, 3.0]


def test_numeric_match() -> None:
    assert numeric_match("The answer is $11,588 million.", "$11588.00") == 1.0
    assert numeric_match("$11.588 billion", "$11588.00") == 1.0  # implicit "in millions"
    assert numeric_match("about 1,234", "1234") == 1.0
    assert numeric_match("12.5%", "0.125") == 1.0
    assert numeric_match("0.125", "12.5%") == 1.0
    assert numeric_match("12.5", "12.5%") == 1.0
    assert numeric_match("93.9", "93.86") == 1.0  # 0.04% off, within 1%
    assert numeric_match("95", "93.86") == 0.0  # 1.2% off
    assert numeric_match("95", "93.86", rel_tol=0.02) == 1.0
    assert numeric_match("(3.7)", "-3.7") == 1.0
    assert numeric_match("It declined by 3.7%", "-3.7") == 1.0
    assert numeric_match("3.7", "-3.7") == 0.0
    # The reference's main number is the marked one, not the year.
    assert numeric_match("Adj. EBITDA was 2.018 billion", "AMCOR's Adj. EBITDA was $2,018mn in FY 2023") == 1.0
    assert numeric_match("It was in 2023", "AMCOR's Adj. EBITDA was $2,018mn in FY 2023") == 0.0
    assert numeric_match("Revenue was 5 in 2020", "30.8%") == 0.0


def test_numeric_match_falls_back_to_text_without_numbers() -> None:
    assert numeric_match("The Developed Rest of the World segment.", "Developed Rest of the World") == 1.0
    assert numeric_match("Europe", "Developed Rest of the World") == 0.0


def test_numeric_match_in_the_filings_stated_units() -> None:
    # Netflix's balance sheet is "in thousands"; FinanceBench's reference is in millions
    stated = stated_scales("CONSOLIDATED BALANCE SHEETS (in thousands, except share and per share data)")
    assert stated == (1e3,)
    assert numeric_match("5,466,312", "$5466.00") == 0.0  # without the filing's units: not the same number
    assert numeric_match_by("5,466,312", "$5466.00", stated=stated) == (1.0, "stated scale")
    assert numeric_match_by("$5,466 million", "$5466.00", stated=stated) == (1.0, "number")
    # a percent or a year is not re-read in the filing's units
    assert numeric_match("5,466,312%", "$5466.00", stated=stated) == 0.0
    assert numeric_match("5,466,312", "$5466.00", stated=(1e9,)) == 0.0  # a scale the filing does not state
    assert stated_scales("(In millions, except per share data) ... in millions ... In Thousands") == (1e6, 1e3)
    assert stated_scales("we sold millions of units") == ()


def test_financebench_scores_say_which_matched_by_a_stated_scale() -> None:
    question = EvalQuestion("q", "d", "Total current liabilities?", ["$5466.00"],
                            metadata={"evidence": [{"text": "(in thousands)\nTotal current liabilities 5,466,312"}]})
    assert score_prediction("financebench", question, "5,466,312")["stated_scale_match"] == 1.0
    assert score_prediction("financebench", question, "5,466,312")["numeric_match"] == 1.0
    assert score_prediction("financebench", question, "$5,466 million")["stated_scale_match"] == 0.0
    assert score_prediction("financebench", question, "$5,466 million")["numeric_match"] == 1.0
    assert score_prediction("financebench", question, "12")["numeric_match"] == 0.0


def test_needle_match() -> None:
    assert needle_match("The special magic Paris number is: 4821337.", "4821337") == 1.0
    assert needle_match("It is 482 1337", "4821337") == 0.0
    assert needle_match("THE BEST THING: eat a sandwich", "eat a sandwich") == 1.0
    assert needle_match("anything", "") == 0.0


def test_scores_are_bounded() -> None:
    cases = [token_f1("a b c", ["b c d"]), hotpot_f1("b c", ["b c d"]), qasper_f1("x", ["x y"])]
    assert all(0.0 <= c <= 1.0 and not math.isnan(c) for c in cases)


def test_answer_recall_holds_the_answer_as_whole_words() -> None:
    from app.eval.metrics import answer_recall
    from app.eval.records import EvalQuestion
    from app.eval.tasks import score_prediction

    assert answer_recall("It was designed by John Smeaton, an engineer.", ["John Smeaton"]) == 1.0
    assert answer_recall("James Black", ["John Smeaton"]) == 0.0
    assert answer_recall("In 18220 ships", ["1822"]) == 0.0 and answer_recall("the 1822 lens", ["1822"]) == 1.0
    assert answer_recall("Yes, both are American.", ["yes"]) == 1.0
    assert answer_recall("Not sure, yes or no.", ["yes"]) == 0.0  # a label must open the answer
    assert answer_recall("This cannot be answered from the paper.", ["unanswerable"]) == 1.0
    assert answer_recall("", ["a"]) == 0.0 and answer_recall("a", []) == 0.0
    # a long right answer: low F1, full recall (what F1 alone hid)
    long = "The lighthouse on the rock was built by the engineer John Smeaton after the second one burned down."
    question = EvalQuestion("q", "d", "Who built it?", ["John Smeaton"])
    scores = score_prediction("narrativeqa", question, long)
    assert scores["recall"] == 1.0 and scores["f1"] <= 0.25
    assert score_prediction("financebench", EvalQuestion("q", "d", "?", ["$1,234 million"]), "about 1234 million")["recall"] == 1.0
