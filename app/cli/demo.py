"""The bundled demo: a collection built from data/demo, and a sample question in every mode."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from app.config import EVAL_MODES
from app.core.demo import DEMO_COLLECTION, DEMO_DIR, demo_files, demo_questions
from model.errors import NotFoundError

if TYPE_CHECKING:
    from app.core.service import LlocoService


def ensure_demo_collection(service: LlocoService, console: Console | None = None) -> str:
    """Create and fill the demo collection unless it exists; re-ingesting is a no-op anyway.

    A demo built with other models (say, before an update shipped a new compressor) is rebuilt
    with the current ones first, so the demo keeps answering after an upgrade."""
    if not DEMO_DIR.is_dir():
        raise NotFoundError(f"demo data not found at {DEMO_DIR} (run from a source checkout)")
    try:
        outdated = service.outdated_models(DEMO_COLLECTION)
    except NotFoundError:
        service.create_collection(DEMO_COLLECTION)
        outdated = []
    if outdated and console is None:
        service.rebuild_collection(DEMO_COLLECTION)
    elif outdated:
        from app.cli.progress import rebuild_with_progress

        console.print(f"the demo collection was built with {', '.join(outdated)}: rebuilding it")
        rebuild_with_progress(service, DEMO_COLLECTION, console)
    files = demo_files()
    if console is not None:
        from app.cli.progress import ingest_with_progress

        results = ingest_with_progress(service, DEMO_COLLECTION, files, console)
        for r in results:
            console.print(f"{r.status:8} {Path(r.path).name}" + (f": {r.error}" if r.error else ""))
    else:
        service.ingest(DEMO_COLLECTION, files)
    return DEMO_COLLECTION


def run_demo(service: LlocoService, console: Console, *, question: str | None = None) -> None:
    from app.cli.progress import print_answer

    name = ensure_demo_collection(service, console)
    question = question or demo_questions()[0]["question"]
    if not service.compressor.trained:
        console.print("[yellow]note: the compressor is untrained, so lloco-mode answers cannot use the context yet[/]")
    for mode in EVAL_MODES:
        console.rule(f"{mode}: {question}")
        print_answer(service.ask(name, question, mode=mode), console)
