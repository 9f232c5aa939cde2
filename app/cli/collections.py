"""``lloco collections``: create, list, delete, rebuild, check, attach an adapter, calibrate."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from app.cli.shared import JSON_OPTION, data_table, human_size, out, print_json, service
from app.eval.runner import parse_modes
from app.training.calibrate import (CALIBRATION_MODES, CALIBRATION_QUESTIONS, FOREIGN_SHARE, calibrate_collection,
                                    recalibrate)

collections_app = typer.Typer(no_args_is_help=True, help="Create, list, delete, rebuild, check and calibrate collections.")


@collections_app.command("create")
def collections_create(name: str) -> None:
    """Create an empty collection with the current models and chunking."""
    info = service().create_collection(name)
    out.print(f"created collection [bold]{info.name}[/] (decoder {info.decoder}, embedder {info.embedder}, "
              f"kappa {info.kappa}, chunks of {info.chunk_tokens} tokens, compressor {info.compressor})")


@collections_app.command("list")
def collections_list(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """List collections with their document and chunk counts."""
    if as_json:
        print_json(service().list_collections())
        return
    table = data_table("name", "documents", "failed", "chunks", "size", "decoder", "kappa", "adapter", "created")
    for c in service().list_collections():
        table.add_row(c.name, str(c.n_documents), str(c.n_failed), str(c.n_chunks), human_size(c.size_bytes), c.decoder,
                      str(c.kappa), c.adapter_path or "-", c.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@collections_app.command("delete")
def collections_delete(name: str, yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False) -> None:
    """Delete a collection with all its documents, chunks and index files."""
    svc = service()
    info = svc.get_collection(name)
    if not yes and not typer.confirm(f"delete collection {name!r} and its {info.n_documents} documents?"):
        raise typer.Exit(1)
    svc.delete_collection(name)
    out.print(f"deleted collection {name}")


@collections_app.command("rebuild")
def collections_rebuild(name: str) -> None:
    """Rebuild a collection with the current decoder, embedder, compressor and chunking."""
    from app.cli.progress import rebuild_with_progress

    result = rebuild_with_progress(service(), name, out)
    out.print(f"rebuilt {name}: {result.documents} documents, {result.chunks} chunks")
    if recalibrate(service(), name):  # the thresholds were chosen on the old chunks
        out.print(f"recalibrated the answer thresholds of {name}")


@collections_app.command("check")
def collections_check(name: str,
                      as_json: Annotated[bool, typer.Option("--json", help="Print the problems as a JSON list.")] = False) -> None:
    """Check that a collection's catalog rows, FAISS index and summary vectors agree (exit 1 if not)."""
    problems = service().check_collection(name)
    if as_json:

        print(json.dumps(problems))
    else:
        out.print(f"{name}: consistent" if not problems else f"{name}: " + "; ".join(problems), highlight=False)
    if problems:
        raise typer.Exit(1)


@collections_app.command("adapter")
def collections_adapter(name: str, path: Annotated[Path | None, typer.Argument(help="LoRA folder; omit with --off.")] = None,
                        off: Annotated[bool, typer.Option("--off", help="Detach the adapter.")] = False) -> None:
    """Attach a LoRA adapter to a collection (used for its lloco-mode questions), or detach it."""
    if (path is None) != off:
        raise typer.BadParameter("give an adapter folder, or --off")
    service().set_adapter(name, None if off else path)
    out.print(f"collection {name}: adapter {'off' if off else path}")


@collections_app.command("calibrate")
def collections_calibrate(
    name: str,
    questions: Annotated[int, typer.Option(min=10, max=2000, help="Synthetic questions asked per mode.")] = CALIBRATION_QUESTIONS,
    modes: Annotated[str, typer.Option(help="Comma-separated answer modes to calibrate.")] = ",".join(CALIBRATION_MODES),
    seed: Annotated[int, typer.Option(help="Which synthetic questions are drawn.")] = 0,
    foreign: Annotated[float, typer.Option(help="Questions made from text the collection does not hold (other "
                                                "collections, else the demo documents), per own question; "
                                                "0: none.")] = FOREIGN_SHARE,
    as_json: Annotated[bool, typer.Option("--json", help="Print each mode's thresholds as JSON.")] = False,
) -> None:
    """Choose the collection's answer thresholds (decline / supported) on its own synthetic questions."""
    results = calibrate_collection(service(), name, modes=parse_modes(modes), questions=questions, seed=seed,  # type: ignore[arg-type]
                                   foreign=foreign)
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    table = data_table("mode", "questions", "answer recall", "AUROC", "decline below", "supported from",
                       "precision", "answered", "foreign declined", "second look below")
    for r in results:
        t = r.thresholds
        table.add_row(r.mode, str(t.n), f"{r.answer_recall:.2f}", "-" if r.auroc is None else f"{r.auroc:.2f}",
                      f"{t.decline:.3f}", "never" if t.supported > 1 else f"{t.supported:.3f}",
                      f"{t.precision:.2f}", f"{t.coverage:.0%}",
                      "-" if t.foreign_declined is None else f"{t.foreign_declined:.0%}",
                      "-" if t.doubt is None else ("always" if t.doubt > 1 else f"{t.doubt:.3f}"))
    out.print(table)
