"""Streaming answers: pieces arrive one by one; the finished answer carries citations and timings."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("mode", ["lloco", "rag", "full"])
def test_stream_then_answer(service, tmp_path, mode):
    doc = tmp_path / "d.md"
    doc.write_text("# Bees\n\nHoneybees dance to show where flowers are. " * 10)
    service.create_collection("c")
    service.ingest("c", [doc])
    stream = service.ask("c", "How do bees show flowers?", mode=mode, top_k=2)
    pieces = list(stream)
    answer = stream.answer
    assert answer.text == "".join(pieces).strip()
    assert 0 < answer.generated_tokens <= service.settings.max_new_tokens + 1
    assert answer.mode == mode and answer.prompt_tokens > 0
    assert answer.citations and answer.citations[0].document == "d.md" and answer.citations[0].page == 1
    assert 0 <= answer.retrieval_s <= answer.ttft_s <= answer.total_s
    assert answer.chunk_ids == [c.chunk_id for c in answer.citations]


def test_full_mode_truncates_to_the_window(service, tmp_path):
    doc = tmp_path / "long.txt"
    doc.write_text("word " * 6000)
    service.settings.max_context_tokens = 512
    service.create_collection("c")
    service.ingest("c", [doc])
    answer = service.ask("c", "word?", mode="full").read()
    assert 400 < answer.prompt_tokens <= 512 - service.settings.max_new_tokens  # filled, with room to answer


def test_greedy_answers_are_reproducible(service, tmp_path):
    doc = tmp_path / "d.txt"
    doc.write_text("Coffee was first drunk in Yemen. " * 10)
    service.create_collection("c")
    service.ingest("c", [doc])
    assert service.ask("c", "Where?", mode="rag").read().text == service.ask("c", "Where?", mode="rag").read().text
