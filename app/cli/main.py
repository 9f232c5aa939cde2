"""The ``lloco`` command line: a thin shell over :class:`app.core.service.LlocoService`."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from app.cli.backup import backup, restore
from app.cli.jobs import jobs_app, worker
from app.cli.collections import collections_app
from app.cli.shared import JSON_OPTION, State, data_table, err, human_size, out, print_json, service
from app.cli.train import train_app
from app.cli.users import users_app
from app.config import Engine, Settings, field_help
from app.jobs.runner import JobCancelled
from model.errors import LlocoError

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="LLoCO document question answering.")
docs_app = typer.Typer(no_args_is_help=True, help="List and delete the documents of a collection.")
models_app = typer.Typer(no_args_is_help=True, help="Models the registry knows.")
app.add_typer(collections_app, name="collections")
app.add_typer(docs_app, name="docs")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate the lloco, rag and full modes on QA datasets.")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")
app.add_typer(users_app, name="users")
app.command("backup")(backup)
app.command("restore")(restore)
app.add_typer(jobs_app, name="jobs")
app.command("worker")(worker)


@app.callback()
def main_options(
    home: Annotated[Path | None, typer.Option(help="State folder (LLOCO_HOME).")] = None,
    database_url: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL of the catalog (LLOCO_DATABASE_URL).")] = None,
    decoder: Annotated[str | None, typer.Option(help="Decoder name or folder (LLOCO_DECODER).")] = None,
    embedder: Annotated[str | None, typer.Option(help="Embedder name or folder (LLOCO_EMBEDDER).")] = None,
    compressor: Annotated[str | None, typer.Option(help="Compressor checkpoint, 'default' or 'untrained'.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu, cuda or mps.")] = None,
    dtype: Annotated[str | None, typer.Option(help="auto, bfloat16, float16 or float32.")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Any setting as FIELD=VALUE (see `lloco config`).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what happens.")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    flags = {"home": home, "database_url": database_url, "decoder": decoder, "embedder": embedder,
             "compressor": compressor, "device": device, "dtype": dtype}
    State.overrides = {k: v for k, v in flags.items() if v is not None}
    for item in set_ or []:
        key, sep, value = item.partition("=")
        if not sep or key not in Settings.model_fields:
            raise typer.BadParameter(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(Settings.model_fields)}")
        State.overrides[key] = value


@app.command("config")
def show_config() -> None:
    """Show every setting: its value, environment variable and help."""
    settings = Settings(**State.overrides)
    table = data_table("setting", "value", "env var", "help")
    for name, env, text in field_help():
        table.add_row(name, str(getattr(settings, name)), env, text)
    out.print(table)
    out.print(f"database: {settings.resolved_database_url}")


@app.command("ingest")
def ingest(collection: str, paths: Annotated[list[Path], typer.Argument(help="Files or folders.")],
           queue: Annotated[bool, typer.Option("--queue", help="Queue the job for a worker (the web app's, the API "
                                               "server's or `lloco worker`) and return at once; the files are "
                                               "listed as 'queued' documents until it runs.")] = False,
           engine: Annotated[Engine, typer.Option(help="Where documents are parsed, embedded and compressed: 'local' (this "
                                                  "process) or 'ray' (Ray workers: the ray_address setting's cluster, "
                                                  "else a local one); the catalog is written here either way.")] = "local",
           as_json: Annotated[bool, typer.Option("--json", help="Print the per-file results as JSON (progress goes to "
                                                 "stderr).")] = False,
           ) -> None:
    """Ingest PDF, text and Markdown files (folders recursively) into a collection."""
    from app.cli.progress import ingest_with_progress

    if queue:
        from app.jobs.handlers import queue_ingest
        from app.jobs.runner import JobRunner

        svc = service()
        job = queue_ingest(JobRunner(sessions=svc.sessions), svc, collection, [p.absolute() for p in paths])
        out.print(f"queued as job #{job.id}: `lloco jobs list` follows it, `lloco worker` runs it", highlight=False)
        return
    # with --json stdout holds the JSON alone: progress, and whatever a library prints, go to stderr
    with contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext():
        results = ingest_with_progress(service(), collection, paths, err if as_json else out, engine=engine)
    failed = [r for r in results if r.status == "failed"]
    if as_json:
        print_json(results)
        results = []  # nothing more on stdout
    for r in results:
        style = {"ingested": "green", "skipped": "yellow", "failed": "red"}[r.status]
        detail = r.error if r.error else f"{r.n_pages} pages, {r.n_chunks} chunks, {r.seconds:.1f} s"
        if r.ocr_pages:
            detail += f", {len(r.ocr_pages)} pages read by OCR"
        if r.table_pages:
            detail += f", tables read on {len(r.table_pages)} pages"
        out.print(f"[{style}]{r.status:8}[/] {Path(r.path).name}: {detail}")
        if r.skipped_pages:
            out.print(f"[yellow]         pages {', '.join(map(str, r.skipped_pages))} have no text layer and no OCR "
                      "reading: not searchable[/]", highlight=False)
    if failed:
        err.print(f"{len(failed)} of {len(results)} files failed")
        raise typer.Exit(1)


@docs_app.command("list")
def docs_list(collection: str, as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """List a collection's documents with status and errors."""
    if as_json:
        print_json(service().list_documents(collection))
        return
    table = data_table("id", "file", "status", "pages", "chunks", "size", "hash", "error")
    for d in service().list_documents(collection):
        table.add_row(str(d.id), d.filename, d.status, str(d.n_pages), str(d.n_chunks), human_size(d.size_bytes),
                      d.content_hash[:12], d.error or "")
    out.print(table)


@docs_app.command("delete")
def docs_delete(collection: str, document: Annotated[str, typer.Argument(help="Id, file name or hash prefix.")]) -> None:
    """Delete a document with its chunks, index vectors and summary vectors."""
    info = service().delete_document(collection, document)
    out.print(f"deleted {info.filename} ({info.n_chunks} chunks) from {collection}")


@app.command("ask")
def ask(
    collection: str,
    question: str,
    mode: Annotated[str, typer.Option(help="lloco (summary vectors + the question's key sentences), lloco-pure (summary vectors only), rag (chunk text), rag+reader (chunk text, reader LoRA) or full (whole document).")] = "lloco",
    top_k: Annotated[int | None, typer.Option("--top-k", help="Chunks to retrieve.")] = None,
    doc: Annotated[list[str] | None, typer.Option("--doc", help="Answer from this document only (id, file name or "
                                                  "hash prefix); repeat for several.")] = None,
    history: Annotated[list[str] | None, typer.Option("--history", help="An earlier question of the conversation "
                                                      "(repeat, oldest first): a follow-up is made standalone.")] = None,
    local: Annotated[bool, typer.Option("--local", help="Answer in this process even when a `lloco api` server "
                                        "runs on this home (which would answer without loading the models).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole answer as one JSON object (text, citations, "
                                          "costs, its claims' verification) instead of streaming it.")] = False,
) -> None:
    """Ask a question: streams the answer, then prints citations, its check against the sources, prompt
    tokens and timings. A running `lloco api` on the same home answers it (no model load), else this
    process does."""
    from app.api.local import ask_server, find_server
    from app.cli.progress import print_answer
    from app.core.answerers import answer_json

    svc = service()
    ids = [svc.find_document(collection, d).id for d in doc] if doc else None
    server = None if local else find_server(svc.settings)
    if server is not None:
        svc.get_collection(collection)  # a missing one: the same message as in-process
        stream = ask_server(*server, collection, question, mode=mode, top_k=top_k, document_ids=ids, history=history)
        if as_json:
            print(json.dumps(answer_json(stream.read()), indent=2))  # type: ignore[arg-type]
            return
        print_answer(stream, out)  # type: ignore[arg-type]
        out.print(f"[dim](answered by the lloco API server at {server[0]})[/]", highlight=False)
        return
    if not local and not as_json:  # the load is most of a CPU call's time: say so, and how to skip it
        err.print("[dim]No `lloco api` server runs on this home: the models load in this process first "
                  "(~10-15 s on a CPU). Start `lloco api` (or `make run API=1`) and later questions skip the load.[/]",
                  highlight=False)
    stream = svc.ask(collection, question, mode=mode, top_k=top_k, document_ids=ids, history=history)  # type: ignore[arg-type]
    if as_json:
        print(json.dumps(answer_json(stream.read()), indent=2))
        return
    print_answer(stream, out)


@models_app.command("list")
def models_list(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Registry models: installed, converted (cached) and where."""
    if as_json:
        print_json(service().models())
        return
    table = data_table("name", "kind", "installed", "cached", "location / how to install", "description")
    for m in service().models():
        cached = "-" if m.cached is None else ("yes" if m.cached else "no")
        table.add_row(m.name, m.kind, "yes" if m.installed else "no", cached, m.location, m.description)
    out.print(table)
    out.print("Any local Hugging Face folder also works: --decoder /path/to/Llama-2-7b-chat-hf")


@app.command("demo")
def demo(question: Annotated[str | None, typer.Option(help="Question to ask the demo collection.")] = None) -> None:
    """Build the bundled demo collection (once) and answer a sample question in every mode."""
    from app.cli.demo import run_demo

    run_demo(service(), out, question=question)


@app.command("api")
def api(
    host: Annotated[str | None, typer.Option(help="Address to listen on (default: the api_host setting, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: the api_port setting, 8000).")] = None,
) -> None:
    """Serve the REST API (/api) and the OpenAI-compatible endpoints (/v1); OpenAPI docs at /docs."""
    from app.api.server import serve

    serve(service(), host=host, port=port, console=out)


@eval_app.command("run")
def eval_run(
    dataset: Annotated[str | None, typer.Option(help="quality, qasper, narrativeqa, hotpotqa, qmsum, squad, financebench or needle.")] = None,
    path: Annotated[Path | None, typer.Option(help="The dataset file (a folder of essays for needle).")] = None,
    modes: Annotated[str | None, typer.Option(help="Comma-separated modes: lloco, lloco-pure, rag, rag+reader, full (default: lloco,lloco-pure,rag,full).")] = None,
    limit: Annotated[int | None, typer.Option(help="Ask only the first N questions.")] = None,
    skip_docs: Annotated[int | None, typer.Option("--skip-docs", help="Leave out the file's first N documents (e.g. those a reader adapter trained on).")] = None,
    skip_paragraphs: Annotated[int | None, typer.Option("--skip-paragraphs", help="SQuAD: leave out each article's first N paragraphs (the shipped reader trained on 12).")] = None,
    sample: Annotated[int | None, typer.Option(help="Ask a random N of the questions (seed 0) instead of the first (--limit).")] = None,
    top_k: Annotated[int | None, typer.Option("--top-k", help="Chunks retrieved per question (default: the top_k setting).")] = None,
    collection_prefix: Annotated[str | None, typer.Option(help="Documents go to the collection PREFIX+DATASET (default: eval-).")] = None,
    adapter: Annotated[Path | None, typer.Option(help="LoRA adapter folder for lloco mode (attached to the eval collection).")] = None,
    run_name: Annotated[str | None, typer.Option(help="Name of the run; an existing name is resumed.")] = None,
    off_collection: Annotated[str | None, typer.Option(help="Ask the questions against this other collection instead "
                                                       "(none of it holds their answers: each should be declined).")] = None,
    resume: Annotated[str | None, typer.Option(help="Resume this run (id or name): skip the answers it already has.")] = None,
) -> None:
    """Ask a dataset's questions in every mode, score them and store the rows (resumable)."""
    from dataclasses import replace

    from app.eval.console import print_summary, run_with_progress
    from app.eval.runner import EvalSpec, load_run, resume_spec

    svc = service()
    given = {"dataset": dataset, "path": str(path) if path else None, "modes": modes, "limit": limit,
             "skip_documents": skip_docs, "skip_paragraphs": skip_paragraphs, "sample": sample, "top_k": top_k,
             "collection_prefix": collection_prefix, "adapter": str(adapter) if adapter else None, "run_name": run_name,
             "off_collection": off_collection}
    given = {k: v for k, v in given.items() if v is not None}
    if resume is not None:
        spec = replace(resume_spec(svc, resume), **given)
    elif dataset is None or path is None:
        raise typer.BadParameter("give --dataset and --path (or --resume RUN)")
    else:
        spec = EvalSpec(**{"top_k": svc.settings.top_k, **given})
    run_id = run_with_progress(svc, spec, out, resume=resume)
    print_summary(load_run(svc, run_id), out)
    out.print(f"report: lloco eval report {run_id}")


@eval_app.command("report")
def eval_report(
    run: Annotated[str, typer.Argument(help="Run id or name.")],
    vs: Annotated[str | None, typer.Option("--vs", help="Another run (id or name) to compare with.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for report.md, summary.json and plots (default: <home>/eval-reports/<run>).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary (means, ratios, paired differences) as JSON.")] = False,
) -> None:
    """Write a run's Markdown + JSON report and plots, and print its summary with paired differences."""

    from app.eval.console import print_summary
    from app.eval.report import write_report
    from app.eval.runner import load_run

    svc = service()
    data = load_run(svc, run)
    other = load_run(svc, vs) if vs is not None else None
    files = write_report(data, out_dir or svc.settings.home / "eval-reports" / data.info.name, vs=other)
    if as_json:
        report = json.loads(files["json"].read_text(encoding="utf-8"))
        report.pop("rows")
        report["files"] = {name: str(file) for name, file in files.items()}
        print(json.dumps(report, indent=2))
        return
    print_summary(data, out, vs=other)
    for name, file in files.items():
        out.print(f"{name}: {file}", highlight=False)


@eval_app.command("list")
def eval_list(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """List evaluation runs with their headline metric per mode."""
    from app.eval.console import runs_json, runs_table
    from app.eval.runner import list_runs

    runs = list_runs(service())
    if as_json:
        print(json.dumps(runs_json(runs), indent=2))
        return
    out.print(runs_table(runs))



def main() -> None:
    """Entry point: precise errors, non-zero exit, no traceback for user mistakes."""
    from pydantic import ValidationError

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # weight-loading bars would drown ours
    try:
        app()
    except LlocoError as exc:
        err.print(f"[red]error:[/] {exc}", soft_wrap=True)  # one line: a path in it stays copyable
        sys.exit(2)
    except ValidationError as exc:
        err.print(f"[red]error:[/] invalid setting: {exc}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted: the document being processed was not stored")
        sys.exit(130)
    except JobCancelled:
        err.print("cancelled (`lloco jobs cancel`): the document being processed was not stored")
        sys.exit(130)
    except Exception as exc:
        from indexing.catalog import busy_message

        if (message := busy_message(exc)) is None:
            raise
        err.print(f"[red]error:[/] {message}", soft_wrap=True)
        sys.exit(3)
