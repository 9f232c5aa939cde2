"""Dataset readers of app.eval.datasets, each on a tiny file written here in its layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.eval.datasets import DatasetError, EvalSet, needle_grid, read_dataset
from app.eval.metrics import needle_match
from app.eval.needle import insert_needle


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def check_consistent(es: EvalSet) -> None:
    """Every question points at a kept document; every kept document is asked about."""
    ids = [d.doc_id for d in es.documents]
    assert len(ids) == len(set(ids))
    assert {q.doc_id for q in es.questions} == set(ids)
    assert len({q.qid for q in es.questions}) == len(es.questions)


# ------------------------------------------------------------------------------------ QuALITY

QUALITY_ROWS = [
    {"input": "The Title\nA story about a ship.", "evaluation": "exam", "source": "quality_raw",
     "instructions": ["Why did it sink?\n\n (A) Ice\n (B) Fire\n (C) A storm at sea\n (D) Pirates",
                      "Who wrote it?\n\n (A) Ann\n (B) Bob\n (C) Cy\n (D) Di"],
     "outputs": ["(C) A storm at sea", "(A) Ann"]},
    {"input": "Second\nAnother story.", "instructions": ["Where?\n\n (A) Here\n (B) There"],
     "outputs": ["(B) There"]},
]


def test_quality_parses_choices_and_letters(tmp_path: Path) -> None:
    es = read_dataset("quality", write_jsonl(tmp_path / "q.jsonl", QUALITY_ROWS))
    check_consistent(es)
    assert es.name == "quality"
    assert [d.title for d in es.documents] == ["The Title", "Second"]
    assert es.documents[0].text == "The Title\nA story about a ship." and es.documents[0].pdf_path is None
    q0, q1, q2 = es.questions
    assert q0.question == "Why did it sink?"
    assert q0.choices == ["Ice", "Fire", "A storm at sea", "Pirates"]
    assert q0.answer_letter == "C" and q0.references == ["(C) A storm at sea"]
    assert q1.answer_letter == "A" and q1.doc_id == q0.doc_id
    assert q2.choices == ["Here", "There"] and q2.answer_letter == "B" and q2.doc_id != q0.doc_id


def test_quality_limit_keeps_only_needed_documents(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "q.jsonl", QUALITY_ROWS)
    one = read_dataset("quality", path, limit=1)
    assert len(one.questions) == 1 and len(one.documents) == 1
    three = read_dataset("quality", path, limit=3)
    assert len(three.questions) == 3 and len(three.documents) == 2
    assert read_dataset("quality", path, limit=0).questions == []
    assert len(read_dataset("quality", path, limit=100).questions) == 3
    with pytest.raises(ValueError):
        read_dataset("quality", path, limit=-1)


def test_quality_missing_field_names_file_line_and_field(tmp_path: Path) -> None:
    bad = dict(QUALITY_ROWS[1])
    del bad["outputs"]
    path = write_jsonl(tmp_path / "bad.jsonl", [QUALITY_ROWS[0], bad])
    with pytest.raises(DatasetError) as err:
        read_dataset("quality", path)
    msg = str(err.value)
    assert str(path) in msg and "line 2" in msg and "'outputs'" in msg
    assert err.value.line == 2 and err.value.field == "outputs"


def test_quality_broken_json_line_and_bad_answer(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "broken.jsonl", [QUALITY_ROWS[0], "", '{"input": "x", "instr'])
    with pytest.raises(DatasetError, match=r"broken\.jsonl, line 3: broken JSON"):
        read_dataset("quality", path)
    row = dict(QUALITY_ROWS[1], outputs=["There"])
    with pytest.raises(DatasetError, match=r"line 1.*option letters") as err:
        read_dataset("quality", write_jsonl(tmp_path / "ans.jsonl", [row]))
    assert err.value.field == "outputs[0]"
    row = dict(QUALITY_ROWS[1], outputs=["(B) There", "(A) Here"])
    with pytest.raises(DatasetError, match="'instructions' has 1 entries but 'outputs' has 2"):
        read_dataset("quality", write_jsonl(tmp_path / "len.jsonl", [row]))
    row = dict(QUALITY_ROWS[1], instructions=["Where? Here or there?"])
    with pytest.raises(DatasetError, match=r"line 1.*no options"):
        read_dataset("quality", write_jsonl(tmp_path / "opt.jsonl", [row]))


def test_missing_file_and_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="nope.jsonl: file not found"):
        read_dataset("qasper", tmp_path / "nope.jsonl")
    with pytest.raises(DatasetError, match="not a file"):
        read_dataset("qasper", tmp_path)
    with pytest.raises(ValueError, match="unknown dataset"):
        read_dataset("bogus", tmp_path / "x.jsonl")  # type: ignore[arg-type]


def test_wrong_layout_is_reported(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "list.jsonl", [[1, 2, 3]])
    with pytest.raises(DatasetError, match="line 1: expected a JSON object"):
        read_dataset("qasper", path)
    path = write_jsonl(tmp_path / "type.jsonl", [{"input": "t", "instructions": "q?", "outputs": ["a"]}])
    with pytest.raises(DatasetError, match="'instructions' should be a list"):
        read_dataset("qasper", path)


# ------------------------------------------------------------------------------------- Qasper

def test_qasper_merges_repeated_questions_into_references(tmp_path: Path) -> None:
    row = {"input": "Introduction\nWe study tweets.", "evaluation": "f1",
           "instructions": ["What size?", "What size?", "Which language?", "What size?"],
           "outputs": ["14,100 tweets", "14100 annotations", "English", "14,100 tweets"]}
    es = read_dataset("qasper", write_jsonl(tmp_path / "s.jsonl", [row]))
    check_consistent(es)
    assert es.documents[0].title == "Qasper paper 1"  # "Introduction" is no title
    assert [q.question for q in es.questions] == ["What size?", "Which language?"]
    assert es.questions[0].references == ["14,100 tweets", "14100 annotations"]
    assert es.questions[0].metadata["n_listings"] == 3
    assert es.questions[1].references == ["English"] and es.questions[1].choices is None


# -------------------------------------------------------------------------------- NarrativeQA

def test_narrativeqa_answers_and_shared_passages(tmp_path: Path) -> None:
    rows = [{"question": "Who is Mark?", "answer": ["A student.", "A DJ."], "passage": "Mark is a student."},
            {"question": "Where?", "answer": "['Phoenix', \"Arizona\"]", "passage": "Mark is a student."},
            {"question": "What?", "answer": "A radio.", "passage": "Other story."}]
    es = read_dataset("narrativeqa", write_jsonl(tmp_path / "n.jsonl", rows))
    check_consistent(es)
    assert len(es.documents) == 2 and es.documents[0].text == "Mark is a student."
    assert [q.references for q in es.questions] == [["A student.", "A DJ."], ["Phoenix", "Arizona"], ["A radio."]]
    assert es.questions[0].doc_id == es.questions[1].doc_id != es.questions[2].doc_id
    bad = rows[:1] + [{"question": "Q", "answer": "['unclosed", "passage": "p"}]
    with pytest.raises(DatasetError, match=r"n2\.jsonl, line 2: field 'answer' is not a valid Python list"):
        read_dataset("narrativeqa", write_jsonl(tmp_path / "n2.jsonl", bad))


def test_skip_documents_leaves_out_the_first_documents_and_all_their_questions(tmp_path: Path) -> None:
    rows = [{"question": f"Q{i}?", "answer": "A.", "passage": f"Story {i % 3}."} for i in range(9)]
    path = write_jsonl(tmp_path / "n.jsonl", rows)
    es = read_dataset("narrativeqa", path, skip_documents=1)
    assert [d.text for d in es.documents] == ["Story 1.", "Story 2."]
    assert [q.question for q in es.questions] == ["Q1?", "Q2?", "Q4?", "Q5?", "Q7?", "Q8?"]  # Story 0's never come back
    assert [q.question for q in read_dataset("narrativeqa", path, skip_documents=2, limit=2).questions] == ["Q2?", "Q5?"]
    assert read_dataset("narrativeqa", path, skip_documents=5).questions == []
    with pytest.raises(ValueError, match="skip_documents"):
        read_dataset("narrativeqa", path, skip_documents=-1)


# ----------------------------------------------------------------------------------- HotpotQA

def hotpot_sample_item(i: int) -> dict[str, Any]:
    return {"_id": f"id{i}", "title_a": "Alpha", "title_b": "Beta",
            "para_a": ["Alpha is a band.", " It formed in 1990."], "para_b": ["Beta is a city."],
            "question": f"Question {i}?", "answer": "yes", "supporting_facts": [[0], [0]],
            "distractors": [["Gamma", ["Gamma is a letter."], 1.5], ["Delta", ["Delta is a river."], 0.7]]}


def test_hotpotqa_sample_layout(tmp_path: Path) -> None:
    path = tmp_path / "h.json"
    path.write_text(json.dumps([hotpot_sample_item(0), hotpot_sample_item(1)]), encoding="utf-8")
    es = read_dataset("hotpotqa", path)
    check_consistent(es)
    doc, q = es.documents[0], es.questions[0]
    paragraphs = doc.text.split("\n\n")
    assert sorted(paragraphs) == sorted(["Alpha\nAlpha is a band. It formed in 1990.", "Beta\nBeta is a city.",
                                         "Gamma\nGamma is a letter.", "Delta\nDelta is a river."])
    assert q.qid == "id0" and q.references == ["yes"] and q.metadata["gold_titles"] == ["Alpha", "Beta"]
    assert [p.split("\n")[0] for p in paragraphs] == q.metadata["paragraph_titles"]
    assert read_dataset("hotpotqa", path).documents == es.documents  # seeded shuffle: stable
    assert len(read_dataset("hotpotqa", path, limit=1).documents) == 1


def test_hotpotqa_official_layout_keeps_order(tmp_path: Path) -> None:
    item = {"_id": "x", "question": "Q?", "answer": "Beta", "type": "bridge", "level": "hard",
            "context": [["Alpha", ["A1.", " A2."]], ["Beta", ["B1."]]], "supporting_facts": [["Alpha", 0]]}
    path = tmp_path / "official.json"
    path.write_text(json.dumps([item]), encoding="utf-8")
    es = read_dataset("hotpotqa", path)
    assert es.documents[0].text == "Alpha\nA1. A2.\n\nBeta\nB1."
    assert es.questions[0].metadata["type"] == "bridge"


def test_hotpotqa_missing_field_and_layout(tmp_path: Path) -> None:
    item = hotpot_sample_item(1)
    del item["para_b"]
    path = tmp_path / "h.json"
    path.write_text(json.dumps([hotpot_sample_item(0), item]), encoding="utf-8")
    with pytest.raises(DatasetError, match=r"h\.json, item \[1\]: missing field 'para_b'"):
        read_dataset("hotpotqa", path)
    path.write_text(json.dumps({"data": []}), encoding="utf-8")
    with pytest.raises(DatasetError, match="expected a JSON list"):
        read_dataset("hotpotqa", path)
    path.write_text('[\n  {"_id": "x",\n  "question": }\n]', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"h\.json, line 3: broken JSON"):
        read_dataset("hotpotqa", path)


# -------------------------------------------------------------------------------------- QMSum

def test_qmsum_transcript_and_both_query_kinds(tmp_path: Path) -> None:
    meeting = {"topic_list": [],
               "meeting_transcripts": [{"speaker": "PM", "content": "Let us start ."},
                                       {"speaker": "UI", "content": "The remote is blue ."}],
               "specific_query_list": [{"query": "What about colour?", "answer": "Blue.",
                                        "relevant_text_span": [["1", "1"]]}],
               "general_query_list": [{"query": "Summarise the meeting.", "answer": "They met."}]}
    path = write_jsonl(tmp_path / "val.jsonl", [meeting, meeting])
    es = read_dataset("qmsum", path)
    check_consistent(es)
    assert es.documents[0].text == "PM: Let us start .\nUI: The remote is blue ."
    assert len(es.documents) == 2 and len(es.questions) == 4
    assert [q.metadata["query_type"] for q in es.questions[:2]] == ["specific", "general"]
    assert es.questions[0].references == ["Blue."]
    assert es.questions[0].metadata["relevant_text_span"] == [["1", "1"]]
    assert len(read_dataset("qmsum", path, limit=3).documents) == 2
    bad = dict(meeting, meeting_transcripts=[{"speaker": "PM"}])
    with pytest.raises(DatasetError, match=r"line 2: missing field 'meeting_transcripts\[0\]\.content'"):
        read_dataset("qmsum", write_jsonl(tmp_path / "bad.jsonl", [meeting, bad]))


# -------------------------------------------------------------------------------------- SQuAD

def squad_file(tmp_path: Path, drop_question: bool = False) -> Path:
    qa_bad: dict[str, Any] = {"id": "q3", "answers": [{"text": "x", "answer_start": 0}], "is_impossible": False}
    if not drop_question:
        qa_bad["question"] = "Third?"
    data = {"version": "v2.0", "data": [
        {"title": "Normans_People", "paragraphs": [
            {"context": "The Normans lived in France.", "qas": [
                {"id": "q1", "question": "Where?", "is_impossible": False,
                 "answers": [{"text": "France", "answer_start": 21}, {"text": "France", "answer_start": 21},
                             {"text": "in France", "answer_start": 18}]},
                {"id": "q2", "question": "When did Rome fall?", "is_impossible": True, "answers": [],
                 "plausible_answers": [{"text": "Normans", "answer_start": 4}]}]},
            {"context": "They spoke French.", "qas": [qa_bad]}]},
        {"title": "Other", "paragraphs": [{"context": "Other text.", "qas": [
            {"id": "q4", "question": "Fourth?", "answers": [{"text": "Other", "answer_start": 0}]}]}]}]}
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_squad_articles_and_unanswerable(tmp_path: Path) -> None:
    es = read_dataset("squad", squad_file(tmp_path))
    check_consistent(es)
    assert [d.title for d in es.documents] == ["Normans People", "Other"]
    assert es.documents[0].text == "The Normans lived in France.\n\nThey spoke French."
    q1, q2, q3, q4 = es.questions
    assert q1.qid == "q1" and q1.references == ["France", "in France"]
    assert q2.references == [] and q2.metadata["is_impossible"] and q2.metadata["plausible_answers"] == ["Normans"]
    assert q3.metadata["paragraph"] == 1 and q4.references == ["Other"]  # no is_impossible: answerable
    limited = read_dataset("squad", squad_file(tmp_path), limit=2)
    assert len(limited.documents) == 1 and [q.qid for q in limited.questions] == ["q1", "q2"]


def test_squad_skip_paragraphs_keeps_the_rest_of_each_article_under_its_own_id(tmp_path: Path) -> None:
    es = read_dataset("squad", squad_file(tmp_path), skip_paragraphs=1)
    check_consistent(es)
    # the first article keeps its second paragraph; the second had only one, so it is gone
    assert [(d.doc_id, d.text) for d in es.documents] == [("squad-0-from-p1", "They spoke French.")]
    assert [q.qid for q in es.questions] == ["q3"]
    with pytest.raises(ValueError, match="squad only"):
        read_dataset("narrativeqa", squad_file(tmp_path), skip_paragraphs=1)


def test_a_sample_is_seeded_in_file_order_with_only_the_documents_it_needs(tmp_path: Path) -> None:
    path = squad_file(tmp_path)
    draws = [[q.qid for q in read_dataset("squad", path, sample=2, seed=seed).questions] for seed in range(12)]
    assert all(len(d) == 2 and d == sorted(d) for d in draws)  # q1..q4 sort as in the file
    assert draws[0] == [q.qid for q in read_dataset("squad", path, sample=2, seed=0).questions]  # seeded
    assert len({tuple(d) for d in draws}) > 1  # ... and a draw, not the first two
    for seed, draw in enumerate(draws):
        es = read_dataset("squad", path, sample=2, seed=seed)
        assert {d.doc_id for d in es.documents} == {q.doc_id for q in es.questions}
    assert len(read_dataset("squad", path, sample=99).questions) == 4  # more than there are: all of them
    with pytest.raises(ValueError, match="not both"):
        read_dataset("squad", path, sample=2, limit=2)


def test_squad_missing_field_names_location(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"dev\.json, data\[0\]\.paragraphs\[1\]\.qas\[0\]: missing field 'question'"):
        read_dataset("squad", squad_file(tmp_path, drop_question=True))


# ------------------------------------------------------------------------------- FinanceBench

def test_financebench_pdf_documents_and_evidence(tmp_path: Path) -> None:
    (tmp_path / "pdfs").mkdir()
    (tmp_path / "pdfs" / "ACME_2022_10K.pdf").write_bytes(b"%PDF-1.4 stub")
    rows = [{"financebench_id": "fb1", "doc_name": "ACME_2022_10K", "company": "Acme", "question": "Revenue?",
             "answer": "$1,234.00", "question_type": "metrics-generated",
             "evidence": [{"evidence_page_num": 7, "evidence_text": "Revenue 1,234"},
                          {"evidence_page_num": 3, "evidence_text": "..."}]},
            {"financebench_id": "fb2", "doc_name": "ACME_2022_10K", "question": "CEO?", "answer": "Jane", "evidence": []},
            {"financebench_id": "fb3", "doc_name": "OTHER_2023_8K", "question": "Q?", "answer": "A"}]
    es = read_dataset("financebench", write_jsonl(tmp_path / "fb.jsonl", rows))
    check_consistent(es)
    assert len(es.documents) == 2
    doc = es.documents[0]
    assert doc.text is None and doc.title == "ACME_2022_10K"
    assert doc.pdf_path == str(tmp_path / "pdfs" / "ACME_2022_10K.pdf")
    q = es.questions[0]
    assert q.qid == "fb1" and q.references == ["$1,234.00"]
    assert q.metadata["evidence_pages"] == [3, 7] and q.metadata["pdf_exists"]
    assert not es.questions[2].metadata["pdf_exists"]
    bad = rows[:1] + [dict(rows[1], evidence=[{"evidence_text": "no page"}])]
    with pytest.raises(DatasetError, match=r"line 2: missing field 'evidence\[0\]\.evidence_page_num'"):
        read_dataset("financebench", write_jsonl(tmp_path / "bad.jsonl", bad))
    with pytest.raises(DatasetError, match="line 1: missing field 'doc_name'"):
        read_dataset("financebench", write_jsonl(tmp_path / "bad2.jsonl", [{"question": "q", "answer": "a"}]))


# ------------------------------------------------------------------------------------- Needle

def essays_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "essays"
    folder.mkdir()
    (folder / "b.txt").write_text("Bravo one is here. Bravo two is here. Bravo three is here.\n", encoding="utf-8")
    (folder / "a.txt").write_text("Alpha one is here. Alpha two is here! Alpha three is here?\n", encoding="utf-8")
    (folder / "notes.md").write_text("ignored", encoding="utf-8")
    return folder


def test_needle_grid_cells(tmp_path: Path) -> None:
    folder = essays_folder(tmp_path)
    grid = needle_grid(folder, context_lengths_chars=[60, 300], depths=[0.0, 0.5, 1.0])
    check_consistent(grid)
    assert len(grid.documents) == 6
    cells = [(q.metadata["context_chars"], q.metadata["depth"]) for q in grid.questions]
    assert cells == [(60, 0.0), (60, 0.5), (60, 1.0), (300, 0.0), (300, 0.5), (300, 1.0)]
    for doc, q in zip(grid.documents, grid.questions):
        needle, answer = q.metadata["needle"], q.references[0]
        assert needle == f"The special magic {q.metadata['city']} number is: {answer}."
        assert q.question == f"What is the special magic {q.metadata['city']} number?"
        assert doc.text.count(needle) == 1 and needle_match(doc.text, answer) == 1.0
        assert doc.text[q.metadata["needle_offset"]:].startswith(needle)
        before = doc.text[: q.metadata["needle_offset"]].rstrip()
        assert before == "" or before[-1] in ".!?"  # a sentence boundary
        assert doc.text.replace(needle, "").replace("  ", " ").strip().startswith("Alpha one")  # sorted files
    short_start, short_mid, short_end = grid.documents[:3]
    assert short_start.text.startswith("The special magic")
    assert short_end.text.endswith(grid.questions[2].metadata["needle"])
    assert "Alpha two is here!" in short_mid.text and "Bravo" not in short_mid.text  # cut to ~60 chars
    assert "Bravo three is here." in grid.documents[3].text  # 300 > both essays: repeated
    again = needle_grid(folder, context_lengths_chars=[60, 300], depths=[0.0, 0.5, 1.0])
    assert again.documents == grid.documents and [q.references for q in again.questions] == [
        q.references for q in grid.questions]


def test_needle_custom_text_and_validation(tmp_path: Path) -> None:
    folder = essays_folder(tmp_path)
    grid = needle_grid(folder, context_lengths_chars=[100], depths=[0.5], needle="The best thing in {city} is tea.",
                       question="What is the best thing?", answer="tea")
    assert "is tea." in grid.documents[0].text and grid.questions[0].references == ["tea"]
    with pytest.raises(ValueError):
        needle_grid(folder, context_lengths_chars=[100], depths=[1.5])
    with pytest.raises(ValueError):
        needle_grid(folder, context_lengths_chars=[0], depths=[0.5])


def test_insert_needle_moves_back_to_sentence_boundary() -> None:
    text, offset = insert_needle("One two. Three four five.", "NEEDLE.", 0.6)
    assert text == "One two. NEEDLE. Three four five." and offset == 9
    assert insert_needle("No boundary here", "N.", 0.5) == ("N. No boundary here", 0)


def test_read_dataset_needle_default_grid_and_errors(tmp_path: Path) -> None:
    folder = essays_folder(tmp_path)
    es = read_dataset("needle", folder)
    assert len(es.documents) == len(es.questions) == 9
    assert {q.metadata["context_chars"] for q in es.questions} == {2000, 8000, 16000}
    assert {q.metadata["depth"] for q in es.questions} == {0.0, 0.5, 1.0}
    assert len(read_dataset("needle", folder, limit=4).questions) == 4
    with pytest.raises(DatasetError, match="missing: folder not found"):
        read_dataset("needle", tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: no non-empty .txt essays"):
        read_dataset("needle", tmp_path / "empty")
