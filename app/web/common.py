"""What every page of the web UI shares: the service and the job runner (one per server process),
the collection picker, background-job progress, uploads, citations with page images.

Pages call only :mod:`app`'s service layer (through :func:`get_service`). Long work (ingestion,
rebuild, adapter training, evaluation) runs as a background job (:mod:`app.jobs.runner`), so it freezes
neither its page nor the others; a page shows its jobs with :func:`job_panel`, which polls.
"""

from __future__ import annotations

import re

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from app.core.second_look import SECOND_LOOK_NOTE, Restart
from app.jobs.eta import time_left_text
from app.jobs.runner import Job, JobRunner
from app.jobs.worker import start_worker
from indexing.loaders import SUPPORTED_SUFFIXES
from model.errors import LlocoError

if TYPE_CHECKING:
    from app.accounts.access import ActingService
    from app.core.citations import Citation
    from app.core.service import LlocoService
    from indexing.pipeline import IngestResult

MODE_LABELS = {"lloco": "LLoCO (vectors + key sentences)", "lloco-pure": "LLoCO pure (summary vectors)",
               "rag": "Plain RAG (chunk text)", "rag+reader": "RAG + reader LoRA (chunk text)",
               "full": "Full context"}
UPLOAD_TYPES = [s.lstrip(".") for s in SUPPORTED_SUFFIXES]  # what ingestion reads
PAGE_IMAGE_WIDTH = 760  # pixels: a page stays readable without filling the whole screen
_injected: dict[str, Any] = {}


def use_service(service: LlocoService | None, *, jobs: JobRunner | None = None) -> None:
    """Serve ``service`` (and queue on ``jobs``) instead of ones built from the settings (tests, and
    the API server started in the same process: :func:`app.web.serve.main` ``--api``); None undoes it."""
    _injected.clear()
    if service is not None:
        _injected["service"] = service
    if jobs is not None:
        _injected["jobs"] = jobs


@st.cache_resource(show_spinner="Loading lloco ...")
def _default_service() -> LlocoService:
    from app.core.service import LlocoService

    return LlocoService()


def get_service() -> LlocoService:
    """The server's one service: models and indexes load once and serve every browser session."""
    return _injected.get("service") or _default_service()


def get_jobs() -> JobRunner:
    """The server's background jobs, shared by every page and browser session, queued in the catalog
    (jobs a crash or restart interrupted are resumed or marked failed when it starts) and run by this
    process's worker thread unless the ``embedded_worker`` setting is off (then by `lloco worker`).
    With the API server in the same process, its runner (one worker thread, not two)."""
    return _injected.get("jobs") or _default_jobs()


@st.cache_resource(on_release=lambda runner: runner.close())
def _default_jobs() -> JobRunner:
    service = get_service()
    runner = JobRunner(sessions=service.sessions)
    if service.settings.embedded_worker:
        start_worker(runner, service)
    return runner


_MARKUP = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:])")  # what Markdown (and Streamlit's LaTeX, emoji) would read


def plain(text: str) -> str:
    """Document or model text for st.markdown, shown as the text it is (issue 27): every Markdown
    character escaped — "14." is a figure, not a list item; '$' is not LaTeX; '*' not emphasis —
    and each line break kept as a line break."""
    return _MARKUP.sub(r"\\\1", text).replace("\n", "  \n")


def plain_stream(pieces: Iterator[str]) -> Iterator[str]:
    """:func:`plain` over streamed pieces (each escape is one character's, so piece by piece is exact)."""
    for piece in pieces:
        yield plain(SECOND_LOOK_NOTE) if isinstance(piece, Restart) else plain(piece)


def fmt_s(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.2f} s"


_SELECT = "select_collection"  # a collection the next picker must show (one just created)


def select_collection(name: str) -> None:
    """Make ``name`` the chosen collection, in the next picker drawn too (its widget keeps its own
    choice otherwise: the picker stayed on the old collection after a create, issue 27)."""
    st.session_state["current_collection"] = st.session_state[_SELECT] = name


def collection_picker(service: LlocoService, key: str, *, where: Any = st) -> str | None:
    """A collection selectbox (the choice is shared between pages); None, with a hint, if there is none."""
    names = [c.name for c in service.list_collections()]
    if (chosen := st.session_state.pop(_SELECT, None)) in names:
        st.session_state[key] = chosen  # before the widget is drawn in this run: allowed
    current = st.session_state.get("current_collection")
    if current is not None and current not in names:
        st.warning(f"The collection {current!r} no longer exists (deleted in another tab?): nothing was asked "
                   "or changed.")
        st.session_state.pop("current_collection")
    if not names:
        st.info("No collection yet: create one on the Collections page.")
        return None
    index = names.index(current) if current in names else 0
    name = where.selectbox("Collection", names, index=index, key=key)
    st.session_state["current_collection"] = name
    return name


def answer_caption(mode: str | None, prompt_tokens: int | None, ttft_s: float | None, total_s: float | None,
                   adapter: str | None = None) -> None:
    """The discreet cost line under an answer."""
    label = MODE_LABELS.get(mode or "", mode or "-").split(" (")[0]
    extra = f" | adapter {Path(adapter).name}" if adapter else ""
    st.caption(f"{label} | prompt tokens {prompt_tokens if prompt_tokens is not None else '-'} | "
               f"first token {fmt_s(ttft_s)} | total {fmt_s(total_s)}{extra}")


@st.cache_data(max_entries=256, show_spinner=False)
def _page_pngs(_service: LlocoService, home: str, who: str, citation: Citation) -> list[tuple[bytes, int, bool]]:
    """PNG bytes of a citation's page(s), page number and whether the snippet was found (cached per
    user ``who``, so the access check of an acting service runs for each user)."""
    import io

    out = []
    for page in _service.citation_pages(citation):
        buffer = io.BytesIO()
        page.image.save(buffer, format="PNG", optimize=True)
        out.append((buffer.getvalue(), page.page, page.highlighted))
    return out


def show_citations(service: LlocoService, citations: list[Citation], *, images: bool = True) -> None:
    """One expander per citation: document, page, score; inside, the snippet and the page image."""
    for n, c in enumerate(citations, 1):
        pages = f"p. {c.page}" if c.page == c.page_end else f"pp. {c.page}-{c.page_end}"
        ocr = ", read by OCR" if c.ocr else ""
        with st.expander(f"[{n}] {c.document}, {pages} (score {c.score:.2f}{ocr})"):
            st.markdown(f"> {plain(c.snippet)}")
            if not images or not c.document.lower().endswith(".pdf"):
                continue
            principal = getattr(service, "principal", None)
            shown = _page_pngs(service, str(service.settings.home), principal.name if principal else "", c)
            if not shown:
                st.caption("The original PDF is not available, so only the quoted text is shown.")
            for png, page, found in shown:
                note = "cited text highlighted" if found else "cited text not located on this page"
                st.image(png, caption=f"{c.document}, page {page} ({note})", width=PAGE_IMAGE_WIDTH, output_format="PNG")


def start_ingest(service: ActingService, name: str, files: list[Any]) -> Job:
    """Save uploaded files under the home and queue their ingestion into ``name`` (they are listed as
    'queued' documents at once; the folder goes when the job ends)."""
    from app.jobs.handlers import new_upload_folder

    folder = new_upload_folder(service.settings)
    paths = []
    for i, f in enumerate(files):  # each in its own folder: two files of one name are both kept
        path = folder / str(i) / (Path(f.name.replace("\\", "/")).name or "upload")
        path.parent.mkdir()
        path.write_bytes(f.getvalue())
        paths.append(path)
    return service.queue_ingest(get_jobs(), name, paths, cleanup=folder)


def upload_form(service: LlocoService, name: str, *, origin: str) -> None:
    """Upload several files into a collection; ingestion runs in the background with progress.
    ``origin`` names the page, whose job panel then shows the results."""
    busy = get_jobs().busy(name)
    files = st.file_uploader("Add documents (PDF, text, Markdown)", type=UPLOAD_TYPES, accept_multiple_files=True,
                             key=f"upload-{name}-{st.session_state.get('upload_round', 0)}")
    if files and st.button(f"Ingest {len(files)} file(s)", key=f"ingest-{name}", disabled=busy is not None,
                           help="busy: " + busy.label if busy else None):
        remember(start_ingest(service, name, files), origin)
        st.session_state["upload_round"] = st.session_state.get("upload_round", 0) + 1  # clear the uploader
        st.rerun()


def show_ingest_results(results: list[IngestResult | dict]) -> None:
    """Per-file outcomes (objects from this process's worker, JSON from another's)."""
    from indexing.pipeline import IngestResult

    for r in results:
        r = IngestResult(**r) if isinstance(r, dict) else r
        shown = Path(r.path).name
        if r.status == "failed":
            error = r.error or "not ingested"
            st.error(error if error.startswith(shown) else f"{shown}: {error}")
        elif r.status == "skipped":
            st.info(f"{shown}: already in the collection")
        else:
            ocr = f"; {len(r.ocr_pages)} page(s) read by OCR" if r.ocr_pages else ""
            ocr += f"; tables read on {len(r.table_pages)} page(s)" if r.table_pages else ""
            st.success(f"{shown}: {r.n_pages} page(s), {r.n_chunks} chunks in {r.seconds:.1f} s{ocr}")
            if r.skipped_pages:
                st.warning(f"{shown}: page(s) {', '.join(map(str, r.skipped_pages))} have no text layer and OCR read "
                           "nothing on them: they are not searchable")


def busy_banner(collection: str) -> Job | None:
    """Say which job writes to ``collection`` now, following its stage and time left (refreshed every
    second; the page reruns once it ends, so its writing actions come back); that job, or None."""
    busy = get_jobs().busy(collection)
    if busy is None:
        return None

    @st.fragment(run_every=1.0)
    def banner() -> None:
        job = get_jobs().get(busy.id) or busy
        if not job.running:
            st.rerun()
        stage = "waiting for the worker" if job.status == "queued" else f"{job.message} ({time_left_text(job.eta_s)})"
        st.info(f"Busy: {job.label}: {stage}. Writing actions wait until it ends.")

    banner()
    return busy


def _show_job(job: Job, on_done: Callable[[Job], None] | None) -> None:
    if job.status == "queued":
        st.progress(0.0, text=f"{job.label}: {job.message}, waiting for the worker")
        if st.button("Cancel", key=f"cancel-job-{job.id}", help="Remove it from the queue."):
            get_jobs().cancel(job.id)
        return
    if job.running:
        st.progress(job.fraction or 0.0, text=f"{job.label}: {job.message} ({time_left_text(job.eta_s)})")
        if job.cancel_requested:
            st.caption("stopping at the next step ...")
        elif st.button("Cancel", key=f"cancel-job-{job.id}", help="Stop at the next step; a document being "
                       "ingested is rolled back, those already in stay."):
            get_jobs().cancel(job.id)
        return
    if job.status == "failed":
        st.error(f"{job.label} failed after {job.seconds:.0f} s: {job.error}")
    elif job.status == "cancelled":
        st.warning(f"{job.label}: {job.error}")
    else:
        st.success(f"{job.label}: done in {job.seconds:.1f} s")
        if on_done is not None:
            on_done(job)
    if st.button("Dismiss", key=f"dismiss-job-{job.id}"):
        st.session_state.get("my_jobs", {}).pop(job.id, None)
        st.rerun()


def job_panel(origin: str, kind: str | None = None, *, collection: str | None = None, limit: int = 3,
              on_done: Callable[[Job], None] | None = None) -> None:
    """This session's recent jobs (of ``kind``, for ``collection``): running ones, and finished ones
    started from the page ``origin`` until dismissed. Refreshed every second while one runs; when a
    job ends the whole page reruns once, so its tables show the new state."""
    mine = st.session_state.get("my_jobs", {})
    jobs = [j for j in get_jobs().jobs(kind=kind, collection=collection)
            if j.id in mine and (j.running or mine[j.id] == origin)][:limit]
    if not jobs:
        return

    @st.fragment(run_every=1.0 if any(j.running for j in jobs) else None)
    def panel() -> None:
        ended = st.session_state.setdefault("ended_jobs", set())
        for job in jobs:
            _show_job(job, on_done)
        newly = {j.id for j in jobs if not j.running} - ended
        if newly:
            ended.update(newly)
            st.rerun()  # the whole page, once: its tables and pickers see what the job changed

    panel()


def remember(job: Job, origin: str) -> Job:
    """Mark a job as this browser session's, started from the page ``origin``; pages show its progress."""
    st.session_state.setdefault("my_jobs", {})[job.id] = origin
    return job


def run_safely(action: Callable[[], Any], success: str | None = None) -> bool:
    """Run a service call; lloco's errors become a message on the page instead of a traceback.
    True when it succeeded."""
    try:
        action()
    except LlocoError as exc:
        st.error(str(exc))
        return False
    if success:
        st.success(success)
    return True
