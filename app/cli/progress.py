"""Terminal rendering shared by the CLI commands: ingestion progress bars and streamed answers."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from app.core.second_look import SECOND_LOOK_NOTE, Restart

if TYPE_CHECKING:
    from app.core.answerers import Answer, AnswerStream
    from app.config import Engine
    from app.core.service import LlocoService
    from indexing.pipeline import IngestResult, ProgressCallback
    from indexing.pipeline import Progress as Progress_
    from indexing.rebuild import RebuildResult


@contextlib.contextmanager
def stage_bars(console: Console) -> Iterator[ProgressCallback]:
    """Two bars (files, and the current file's stage) fed by pipeline progress events."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bars:
        files = bars.add_task("files", total=None)
        stage = bars.add_task("", total=None)

        def on_progress(event: Progress_) -> None:
            bars.update(files, total=event.n_files, completed=event.file_index + (event.stage == "done"),
                        description=f"files ({event.file})")
            bars.update(stage, description=f"  {event.stage}", total=event.total or None, completed=event.done)

        yield on_progress


def ingest_with_progress(service: LlocoService, collection: str, paths: list[Path], console: Console, *,
                         engine: Engine = "local") -> list[IngestResult]:
    """Run an ingestion with progress bars, recorded as a job in the catalog (`lloco jobs list`).
    ``engine`` 'ray': documents derived on Ray workers (which load the models there)."""
    from app.jobs.eta import rates_for
    from app.jobs.runner import JobRunner, ingest_reporter

    if engine == "local":  # loading the models first keeps the bars honest about where the time goes
        console.print("loading models ...")
        _ = service.compressor, service.embedder
    with stage_bars(console) as on_progress:
        def work(report):
            to_job = ingest_reporter(report, rates=rates_for(collection))
            return service.ingest(collection, paths, progress=lambda event: (on_progress(event), to_job(event)),
                                  engine=engine)

        return JobRunner(sessions=service.sessions).run("ingest", f"ingest {len(paths)} path(s) into {collection}",
                                                         work, collection=collection)


def rebuild_with_progress(service: LlocoService, collection: str, console: Console) -> RebuildResult:
    """Rebuild a collection with the current models, with progress bars, recorded as a job."""
    from app.jobs.eta import rates_for
    from app.jobs.runner import JobRunner, ingest_reporter

    with stage_bars(console) as on_progress:
        def work(report):
            to_job = ingest_reporter(report, rates=rates_for(collection), noun="document")
            return service.rebuild_collection(collection, progress=lambda event: (on_progress(event), to_job(event)))

        return JobRunner(sessions=service.sessions).run("rebuild", f"rebuild {collection}", work, collection=collection)


def print_answer(stream: AnswerStream, console: Console) -> Answer:
    """Stream an answer to the terminal, then its citations, prompt tokens and timings."""
    for piece in stream:
        console.print(SECOND_LOOK_NOTE if isinstance(piece, Restart) else piece, end="", markup=False,
                      highlight=False, soft_wrap=True)
    console.print()
    answer = stream.answer
    if answer.standalone:
        console.print(f"[dim]asked as: {answer.standalone}[/]", highlight=False)
    if not answer.citations:
        console.print("[yellow]no chunks retrieved for this question[/]")
    for n, c in enumerate(answer.citations, 1):
        pages = f"p. {c.page}" if c.page == c.page_end else f"pp. {c.page}-{c.page_end}"
        ocr = ", OCR" if c.ocr else ""
        console.print(f"[dim][{n}] {c.document}, {pages} (score {c.score:.3f}{ocr}): {c.snippet}[/]", highlight=False)
    if (v := answer.verification) is not None:
        style = {"supported": "green", "partly": "yellow"}.get(v.verdict, "red")
        console.print(f"[{style}]checked: {v.summary()}[/]", highlight=False)
        for claim in v.claims:
            if claim.status == "unsupported":
                lacks = f" (lacks: {', '.join(claim.missing)})" if claim.missing else ""
                console.print(f"[{style}]  not in the sources: {escape(claim.text + lacks)}[/]", highlight=False)
    ttft = f"{answer.ttft_s:.2f} s" if answer.ttft_s is not None else "-"
    console.print(f"[dim]mode {answer.mode} | prompt tokens {answer.prompt_tokens} "
                  f"(context {answer.context_tokens}) | generated {answer.generated_tokens} | "
                  f"retrieval {answer.retrieval_s * 1000:.0f} ms | first token {ttft} | total {answer.total_s:.2f} s"
                  + (f" | adapter {answer.adapter}" if answer.adapter else "") + "[/]", highlight=False)
    return answer
