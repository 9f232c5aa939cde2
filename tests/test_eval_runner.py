"""The evaluation runner on the tiny model: complete runs, resume, failures, per-document
retrieval, option log-likelihood, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from app.eval.datasets import DatasetError
from app.eval.runner import EvalSpec, load_run, run_eval
from indexing.catalog import Chunk, Document
from model.errors import InvalidInputError, NotFoundError

LIGHTHOUSE = ("The lighthouse keeper lit the lamp every evening before the tide rose. "
              "He climbed the stairs of the tower and wound the clockwork. ") * 8
BEES = ("Honeybees dance to tell their sisters where flowers are. The dance points at the sun "
        "and its length says how far the meadow is. ") * 8


def quality_line(article: str, questions: list[tuple[str, list[str], str]]) -> str:
    """One L-Eval QuALITY line: (stem, four options, correct letter) per question."""
    instructions = [stem + "".join(f"\n({'ABCD'[i]}) {c}" for i, c in enumerate(choices))
                    for stem, choices, _ in questions]
    outputs = [f"({letter}) {choices['ABCD'.index(letter)]}" for _, choices, letter in questions]
    return json.dumps({"input": article, "instructions": instructions, "outputs": outputs})


def write_quality(path: Path, *docs: tuple[str, list[tuple[str, list[str], str]]]) -> Path:
    path.write_text("\n".join(quality_line(a, qs) for a, qs in docs) + "\n", encoding="utf-8")
    return path


LAMP_QS = [("Who lit the lamp every evening?", ["the keeper", "a bee", "the moon", "nobody"], "A"),
           ("When did the keeper light the lamp?", ["at dawn", "every evening", "at noon", "never"], "B")]
BEE_QS = [("What do honeybees dance to tell their sisters?", ["the time", "where flowers are", "a song", "the tide"], "B")]


@pytest.fixture
def quality_file(tmp_path) -> Path:
    return write_quality(tmp_path / "quality.jsonl", (LIGHTHOUSE, LAMP_QS))


def test_complete_run_in_all_modes(service, quality_file, tmp_path):
    run_id = run_eval(service, EvalSpec("quality", str(quality_file), top_k=2))
    run = load_run(service, run_id)
    assert run.info.status == "done" and run.info.finished_at is not None
    modes = ("lloco", "lloco-pure", "rag", "full")
    assert run.info.modes == list(modes) and run.info.settings["n_questions"] == 2
    assert run.info.settings["expand_tokens"] == service.settings.expand_tokens
    assert {(r.qid, r.mode) for r in run.rows} == {(f"quality-1-{i}", m) for i in (0, 1) for m in modes}
    for r in run.rows:
        assert r.status == "ok" and r.error is None and r.prediction is not None
        assert set(r.score) == {"accuracy", "option_ll_accuracy", "option_ll_norm_accuracy"}
        assert all(v in (0.0, 1.0) for v in r.score.values())
        assert r.prompt_tokens > 0 and r.chunk_ids and 0 <= r.retrieval_s <= r.ttft_s <= r.total_s
        assert "(A) " in r.question and r.references in (["(A) the keeper"], ["(B) every evening"])
    by_mode = {r.mode: r.prompt_tokens for r in run.rows if r.qid == "quality-1-0"}
    assert by_mode["lloco-pure"] <= by_mode["lloco"] < by_mode["rag"] < by_mode["full"]  # 4 vectors per 48-token chunk
    # the document was written under the home and ingested into eval-quality, once
    assert (service.settings.home / "eval-docs" / "quality" / "quality-1.txt").read_text() == LIGHTHOUSE
    assert [d.filename for d in service.list_documents("eval-quality")] == ["quality-1.txt"]
    n_chunks = service.get_collection("eval-quality").n_chunks
    # a second run reuses the compressed document (no new document, no new chunks)
    qasper = tmp_path / "qasper.jsonl"
    qasper.write_text(json.dumps({"input": BEES, "instructions": ["What do bees dance about?"],
                                  "outputs": ["where flowers are"]}) + "\n")
    again = load_run(service, run_eval(service, EvalSpec("quality", str(quality_file), modes=("rag",), top_k=2)))
    assert again.info.id != run_id and len(again.rows) == 2
    assert service.get_collection("eval-quality").n_chunks == n_chunks
    other = load_run(service, run_eval(service, EvalSpec("qasper", str(qasper), top_k=2)))
    assert [set(r.score) for r in other.rows] == [{"f1", "recall"}] * 4 and {r.status for r in other.rows} == {"ok"}
    assert [d.filename for d in service.list_documents("eval-qasper")] == ["qasper-1.txt"]


THREE = ("lloco", "rag", "full")  # the modes the resume and failure tests follow


class AskSpy:
    """Wraps ``service.ask``: records each call's mode, raises ``exc`` on call number ``fail_at``."""

    def __init__(self, monkeypatch, service, fail_at: int | None = None, exc: BaseException | None = None) -> None:
        self.calls: list[str] = []
        self.fail_at, self.exc, self._real = fail_at, exc, service.ask
        monkeypatch.setattr(service, "ask", self)

    def __call__(self, name, question, **kw):
        self.calls.append(kw["mode"])
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise self.exc
        return self._real(name, question, **kw)


def test_resume_skips_answered_rows(service, quality_file, monkeypatch):
    spy = AskSpy(monkeypatch, service, fail_at=4, exc=KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_eval(service, EvalSpec("quality", str(quality_file), modes=THREE, top_k=2, run_name="r1"))
    run = load_run(service, "r1")
    assert run.info.status == "failed" and run.info.error == "interrupted" and len(run.rows) == 3
    spy.calls, spy.fail_at = [], None
    # resuming by name asks only the three missing (question, mode) pairs
    assert run_eval(service, EvalSpec("quality", str(quality_file), modes=THREE, top_k=2, run_name="r1")) == run.info.id
    assert spy.calls == ["lloco", "rag", "full"]
    run = load_run(service, run.info.id)
    assert run.info.status == "done" and len(run.rows) == 6 and {r.status for r in run.rows} == {"ok"}
    # resuming by id: nothing left to ask
    spy.calls = []
    run_eval(service, EvalSpec("quality", str(quality_file), modes=THREE, top_k=2), resume=run.info.id)
    assert spy.calls == []
    # a resumed run must keep its settings
    with pytest.raises(InvalidInputError, match="top_k 2 \\(now 3\\)"):
        run_eval(service, EvalSpec("quality", str(quality_file), modes=THREE, top_k=3, run_name="r1"))
    service.settings.expand_tokens += 1  # answers with another expansion budget would not be comparable
    with pytest.raises(InvalidInputError, match="expand_tokens"):
        run_eval(service, EvalSpec("quality", str(quality_file), modes=THREE, top_k=2, run_name="r1"))
    service.settings.expand_tokens -= 1
    service.settings.answer_engine = "llama-cpp"  # nor answers of another engine (the run records its engine)
    with pytest.raises(InvalidInputError, match="answer_engine 'transformers' \\(now 'llama-cpp'\\)"):
        run_eval(service, EvalSpec("quality", str(quality_file), modes=THREE, top_k=2, run_name="r1"))
    assert load_run(service, "r1").info.settings["answer_engine"] == "transformers"


def test_limit_then_resume_with_more_questions(service, quality_file, monkeypatch):
    run_eval(service, EvalSpec("quality", str(quality_file), modes=("rag", "lloco"), limit=1, top_k=2, run_name="grow"))
    spy = AskSpy(monkeypatch, service)
    run_eval(service, EvalSpec("quality", str(quality_file), modes=("rag", "full"), limit=2, top_k=2, run_name="grow"))
    assert spy.calls == ["full", "rag", "full"]  # question 1 in full mode, then question 2
    run = load_run(service, "grow")
    assert run.info.modes == ["rag", "lloco", "full"] and len(run.rows) == 5


def test_failures_are_recorded_and_the_run_goes_on(service, tmp_path, monkeypatch):
    path = write_quality(tmp_path / "q.jsonl", ("", LAMP_QS[:1]), (BEES, BEE_QS))  # line 1: an empty article
    spy = AskSpy(monkeypatch, service, fail_at=2, exc=RuntimeError("decoder exploded"))
    run = load_run(service, run_eval(service, EvalSpec("quality", str(path), modes=THREE, top_k=2)))
    assert run.info.status == "done"
    rows = {(r.qid, r.mode): r for r in run.rows}
    for mode in ("lloco", "rag", "full"):
        bad = rows[("quality-1-0", mode)]
        assert bad.status == "failed" and "quality-1 failed to ingest" in bad.error and "empty" in bad.error
        assert bad.score == {} and bad.prompt_tokens is None
    assert rows[("quality-2-0", "rag")].status == "failed"
    assert rows[("quality-2-0", "rag")].error == "RuntimeError: decoder exploded"
    assert rows[("quality-2-0", "lloco")].status == rows[("quality-2-0", "full")].status == "ok"
    assert len(spy.calls) == 3  # the document that failed to ingest was never asked about
    # resuming retries the failed rows (the empty document fails again, without asking)
    spy.calls = []
    run_eval(service, EvalSpec("quality", str(path), modes=THREE, top_k=2), resume=run.info.id)
    assert spy.calls == ["rag"]
    assert load_run(service, run.info.id).rows[-1].status == "ok"


def test_retrieval_is_restricted_to_the_question_document(service, tmp_path):
    # the bee question is written with the lighthouse's words, so unrestricted retrieval goes there
    tricky = [("The keeper lit the lamp of the tower every evening: what did the bees do?",
               ["danced", "slept", "sang", "flew"], "A")]
    path = write_quality(tmp_path / "q.jsonl", (LIGHTHOUSE, LAMP_QS), (BEES, tricky))
    run = load_run(service, run_eval(service, EvalSpec("quality", str(path), top_k=3)))
    with service.sessions() as session:
        owner = dict(session.execute(select(Chunk.id, Document.filename).join(Document)).all())
    for r in run.rows:
        assert r.status == "ok" and r.chunk_ids
        assert {owner[c] for c in r.chunk_ids} == {f"{r.doc_id}.txt"}, (r.qid, r.mode)
    # without the filter the same question retrieves the other document's chunks
    question = run.rows[-1].question
    assert {c.document for c, _ in service.retrieve("eval-quality", question, top_k=3)} == {"quality-1.txt"}
    bees_id = next(d.id for d in service.list_documents("eval-quality") if d.filename == "quality-2.txt")
    hits = service.retrieve("eval-quality", question, top_k=3, document_ids=[bees_id])
    assert hits and {c.document for c, _ in hits} == {"quality-2.txt"}
    # full mode reads that document only: its prompt holds the bee text, not the lighthouse's
    full = service.ask("eval-quality", question, mode="full", document_ids=[bees_id]).read()
    assert {c.document for c in full.citations} == {"quality-2.txt"}


def test_option_loglikelihood_picks_the_most_likely_option(service, quality_file):
    import torch

    from app.eval.tasks import LL_INSTRUCTION
    from model.generation import prompt_logits

    run = load_run(service, run_eval(service, EvalSpec("quality", str(quality_file), top_k=2)))
    doc_id = service.list_documents("eval-quality")[0].id
    for row in run.rows:
        stem, choices, letter = LAMP_QS[int(row.qid[-1])]
        answerer = service.answerer("eval-quality", row.mode, instruction=LL_INSTRUCTION)
        prompt = answerer.prepare(stem, top_k=2, document_ids=[doc_id]).embeds
        direct = []
        for choice in choices:  # one plain forward over prompt + option, log-softmax, gather
            ids = service.decoder.encode(choice)
            embeds = torch.cat([prompt, service.decoder.embed_ids(ids).unsqueeze(0)], dim=1)
            logp = torch.log_softmax(prompt_logits(service.decoder, embeds, adapter=answerer.adapter)[0], dim=-1)
            n = prompt.shape[1]
            direct.append(sum(float(logp[n - 1 + i, t]) for i, t in enumerate(ids)))
        stored = row.details["option_logprobs"]
        assert list(stored) == ["A", "B", "C", "D"]
        assert list(stored.values()) == pytest.approx(direct, abs=1e-3)
        best = "ABCD"[max(range(4), key=lambda i: direct[i])]
        assert row.details["option_ll_choice"] == best
        assert row.score["option_ll_accuracy"] == float(best == letter)
        norm = "ABCD"[max(range(4), key=lambda i: direct[i] / len(choices[i]))]
        assert row.score["option_ll_norm_accuracy"] == float(norm == letter)


def test_option_scores_argmax():
    from app.eval.records import EvalQuestion
    from app.eval.tasks import option_scores

    q = EvalQuestion("q", "d", "stem", ["(C) a long option"], choices=["x", "yy", "a long option", "zz"],
                     answer_letter="C")
    scores, details = option_scores(q, [-5.0, -9.0, -6.5, -7.0])
    assert details["option_ll_choice"] == "A" and scores["option_ll_accuracy"] == 0.0
    assert details["option_ll_norm_choice"] == "C" and scores["option_ll_norm_accuracy"] == 1.0  # -6.5/13 is best


def test_continuation_logprobs_match_single_passes(tiny_decoder):
    from model.generation import continuation_logprob, continuation_logprobs

    prompt = tiny_decoder.embed_ids(tiny_decoder.encode("The lighthouse keeper lit the")).unsqueeze(0).detach()
    options = [tiny_decoder.encode(t) for t in (" lamp every evening.", " moon", "x", "")]
    assert continuation_logprobs(tiny_decoder, prompt, options) == pytest.approx(
        [continuation_logprob(tiny_decoder, prompt, ids) for ids in options], abs=1e-4)


def test_bad_input_is_refused_clearly(service, tmp_path, quality_file):
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(DatasetError, match="nope.jsonl: file not found"):
        run_eval(service, EvalSpec("quality", str(missing)))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(quality_line(LIGHTHOUSE, LAMP_QS) + "\n{not json\n")
    with pytest.raises(DatasetError, match=r"broken.jsonl, line 2: broken JSON"):
        run_eval(service, EvalSpec("quality", str(broken)))
    for spec, message in [(EvalSpec("trivia", str(quality_file)), "unknown dataset 'trivia'"),
                          (EvalSpec("quality", str(quality_file), modes=("lloco", "magic")), "unknown mode 'magic'"),
                          (EvalSpec("quality", str(quality_file), modes=()), "no modes"),
                          (EvalSpec("quality", str(quality_file), modes=("rag", "rag")), "repeated"),
                          (EvalSpec("quality", str(quality_file), limit=0), "--limit must be at least 1"),
                          (EvalSpec("quality", str(quality_file), top_k=0), "--top-k must be between 1 and 100"),
                          (EvalSpec("quality", str(quality_file), run_name="a b"), "invalid run name"),
                          (EvalSpec("quality", str(quality_file), skip_paragraphs=12), "--skip-paragraphs applies to squad"),
                          (EvalSpec("quality", str(quality_file), sample=2, limit=2), "--sample must be .* without --limit")]:
        with pytest.raises(InvalidInputError, match=message):
            run_eval(service, spec)
    from app.eval.runner import list_runs

    assert list_runs(service) == []  # nothing was started


def test_needle_run_from_a_folder_of_essays(service, tmp_path):
    from app.eval.report import write_report

    essays = tmp_path / "essays"
    essays.mkdir()
    (essays / "a.txt").write_text(LIGHTHOUSE)
    (essays / "b.txt").write_text(BEES)
    run = load_run(service, run_eval(service, EvalSpec("needle", str(essays), modes=("rag", "full"), limit=2, top_k=2)))
    assert [(r.qid, r.mode) for r in run.rows] == [("needle-2000-0-q", "rag"), ("needle-2000-0-q", "full"),
                                                   ("needle-2000-50-q", "rag"), ("needle-2000-50-q", "full")]
    assert all(r.status == "ok" and set(r.score) == {"match"} for r in run.rows)
    assert [r.details["depth"] for r in run.rows] == [0.0, 0.0, 0.5, 0.5]
    assert {r.details["context_chars"] for r in run.rows} == {2000}
    files = write_report(run, tmp_path / "report")
    assert files["needle_heatmap"].stat().st_size > 1000


def test_adapter_is_used_for_lloco_mode_and_recorded(settings, tiny_folder, quality_file, tmp_path):
    import torch

    from app.core.service import LlocoService
    from model.loading import load_decoder
    from tests.fakes import HashEmbedder
    from tests.test_adapters import _adapter

    decoder = load_decoder(tiny_folder, name="tiny", device="cpu", dtype=torch.float32)  # private: adapters stay here
    service = LlocoService(settings, decoder=decoder, embedder=HashEmbedder())
    lora = str(_adapter(tmp_path / "lora", tiny_folder, 1).resolve())
    spec = EvalSpec("quality", str(quality_file), modes=("lloco", "rag"), limit=1, top_k=2, adapter=lora, run_name="lora")
    run = load_run(service, run_eval(service, spec))
    assert run.info.adapter == lora and service.get_collection("eval-quality").adapter_path == lora
    assert {r.mode: r.details["adapter"] for r in run.rows} == {"lloco": lora, "rag": None}
    other = str(_adapter(tmp_path / "other", tiny_folder, 2).resolve())
    with pytest.raises(InvalidInputError, match="adapter"):  # a resumed run keeps its adapter
        run_eval(service, EvalSpec("quality", str(quality_file), top_k=2, adapter=other, run_name="lora"))
    assert service.get_collection("eval-quality").adapter_path == lora  # and the collection too
    with pytest.raises(NotFoundError, match="not a LoRA adapter folder"):
        run_eval(service, EvalSpec("quality", str(quality_file), adapter=str(tmp_path)))


def test_financebench_run_ingests_the_pdfs_and_records_a_missing_one(service, tmp_path):
    import json

    from tests.fakes import make_pdf

    (tmp_path / "pdfs").mkdir()
    make_pdf(tmp_path / "pdfs" / "ACME_2022_10K.pdf", ["Overview of ACME. " * 20, "Total revenue was $1,234 million. " * 8])
    lines = [{"financebench_id": "fb-1", "doc_name": "ACME_2022_10K", "question": "What was ACME's total revenue?",
              "answer": "$1,234 million", "evidence": [{"evidence_page_num": 1, "evidence_text": "Total revenue"}]},
             {"financebench_id": "fb-2", "doc_name": "GONE_2022_10K", "question": "Revenue?", "answer": "$5"}]
    path = tmp_path / "financebench_open_source.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    run = load_run(service, run_eval(service, EvalSpec("financebench", str(path), modes=("rag",), top_k=1)))
    rows = {r.qid: r for r in run.rows}
    assert rows["fb-1"].status == "ok" and set(rows["fb-1"].score) == {"numeric_match", "recall", "evidence_recall", "stated_scale_match"}
    from indexing.retrieval import chunks_by_id

    [chunk] = chunks_by_id(service.sessions, rows["fb-1"].chunk_ids)  # evidence page 1 (0-based) = page 2
    assert rows["fb-1"].score["evidence_recall"] == float(chunk.page_start <= 2 <= chunk.page_end)
    assert rows["fb-1"].chunk_ids and rows["fb-1"].prompt_tokens > 0
    assert rows["fb-2"].status == "failed" and "GONE_2022_10K" in rows["fb-2"].error
    assert [d.filename for d in service.list_documents("eval-financebench")] == ["ACME_2022_10K.pdf"]


def test_off_collection_asks_another_collections_documents_and_keeps_each_verification(service, quality_file,
                                                                                          tmp_path):
    """Issue 23: a set's questions asked against a collection that cannot answer them (none of its
    documents is ingested); each row keeps its verification for the selective-answering figures."""
    from app.eval.selective import selective

    bees = tmp_path / "bees.txt"
    bees.write_text(BEES)
    service.create_collection("garden")
    service.ingest("garden", [bees])
    run = load_run(service, run_eval(service, EvalSpec("quality", str(quality_file), modes=("lloco", "rag"),
                                                       off_collection="garden", run_name="off")))
    assert run.info.settings["off_collection"] == "garden" and len(run.rows) == 4
    with service.sessions() as session:
        owner = dict(session.execute(select(Chunk.id, Document.filename).join(Document)).all())
    for r in run.rows:
        assert r.status == "ok" and {owner[c] for c in r.chunk_ids} == {"bees.txt"}
        assert r.details["off_collection"] == "garden" and 0 <= r.details["verification"]["confidence"] <= 1
    assert "eval-quality" not in {c.name for c in service.list_collections()} or not service.list_documents("eval-quality")
    assert {s.mode for s in selective(run, ["accuracy"])} == {"lloco", "rag"}
    with pytest.raises(NotFoundError, match="no collection named 'nowhere'"):
        run_eval(service, EvalSpec("quality", str(quality_file), off_collection="nowhere"))
    with pytest.raises(InvalidInputError, match="the set's own collection"):
        run_eval(service, EvalSpec("quality", str(quality_file), off_collection="eval-quality"))
