"""The Collections page (admin): create, list, documents, upload, rebuild, adapter, delete.

Ingestion, rebuilding and adapter training run as background jobs with progress; while one
writes to a collection, the buttons that would also write to it are disabled.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import streamlit as st

from app.web.auth import require_admin_page
from app.web.common import (
    busy_banner,
    collection_picker,
    get_jobs,
    get_service,
    job_panel,
    remember,
    run_safely,
    select_collection,
    show_ingest_results,
    upload_form,
)
from model.train_adapter import COLLECTION_STEPS

if TYPE_CHECKING:
    from app.accounts.access import ActingService  # the page acts as the signed-in user
    from app.jobs.runner import Job


def create_form(service: ActingService, *, expanded: bool) -> None:
    s = service.settings
    with st.expander("Create a collection", icon=":material/add:", expanded=expanded), st.form("create"):
        new = st.text_input("New collection name", placeholder="letters, digits, '_', '-', '.'")
        st.caption(f"Built with this server's models and chunking: decoder `{s.decoder}`, embedder `{s.embedder}`, "
                   f"compressor `{s.compressor}`, κ = {s.summary_tokens} summary vectors per chunk of "
                   f"{s.chunk_tokens} tokens (overlap {s.chunk_overlap}). Change them with `LLOCO_*` settings "
                   "(see `lloco config`) before starting the server.")
        if st.form_submit_button("Create") and new:
            if run_safely(lambda: service.create_collection(new.strip()), f"created {new.strip()}"):
                select_collection(new.strip())


def collections_table(service: ActingService) -> None:
    infos = service.list_collections()
    st.dataframe([{"name": c.name, "documents": c.n_documents, "failed": c.n_failed, "chunks": c.n_chunks,
                   "MB": round(c.size_bytes / 2**20, 2), "kappa": c.kappa, "chunk tokens": c.chunk_tokens,
                   "compressor": c.compressor, "adapter": Path(c.adapter_path).name if c.adapter_path else "",
                   "created": c.created_at.strftime("%Y-%m-%d %H:%M")} for c in infos], hide_index=True)


def documents_section(service: ActingService, name: str, busy: bool) -> None:
    docs = service.list_documents(name)
    st.dataframe([{"id": d.id, "file": d.filename, "status": d.status, "pages": d.n_pages, "chunks": d.n_chunks,
                   "KB": round(d.size_bytes / 1024, 1), "added": d.created_at.strftime("%Y-%m-%d %H:%M"),
                   "error": d.error or ""} for d in docs], hide_index=True)
    if docs:
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        doc = left.selectbox("Document", docs, format_func=lambda d: f"{d.id}: {d.filename} ({d.status})",
                             key=f"doc-{name}")
        if right.button("Delete document", disabled=busy, width="stretch") and \
                run_safely(lambda: service.delete_document(name, doc.id)):
            st.rerun()
    upload_form(service, name, origin="collections")


def rebuild_section(service: ActingService, name: str, busy: bool) -> None:
    st.caption("Re-chunk, re-embed and re-compress every document with this server's models and settings "
               "(needed after changing the compressor, κ, the embedder or the chunking).")
    if st.button("Rebuild the index", disabled=busy):
        remember(service.queue_rebuild(get_jobs(), name), "collections")
        st.rerun()


def adapter_section(service: ActingService, name: str, busy: bool) -> None:
    info = service.get_collection(name)
    st.markdown(f"Adapter in use for LLoCO answers: `{info.adapter_path or 'none (the default reader)'}`")
    left, mid, right = st.columns([4, 1, 1], vertical_alignment="bottom")
    path = left.text_input("LoRA adapter folder", value=info.adapter_path or "", key=f"adapter-path-{name}")
    if mid.button("Attach", disabled=busy or not path.strip(), width="stretch") and \
            run_safely(lambda: service.set_adapter(name, Path(path.strip()).expanduser())):
        st.rerun()
    if right.button("Detach", disabled=busy or not info.adapter_path, width="stretch") and \
            run_safely(lambda: service.set_adapter(name, None)):
        st.rerun()
    train_form(service, name, busy)


def train_form(service: ActingService, name: str, busy: bool) -> None:
    """Train a LoRA for this collection from a QA file and/or synthetic questions; it is attached when done."""
    with st.form(f"train-{name}"):
        st.markdown("**Train an adapter for this collection**")
        qa = st.file_uploader("QA pairs (JSONL: one {\"question\", \"answer\"} per line)", type=["jsonl", "json"])
        left, right = st.columns(2)
        synthetic = left.number_input("Synthetic questions from the chunks", 0, 5000, 0 if qa else 64, step=16)
        steps = right.number_input("Training steps", 1, 10000, COLLECTION_STEPS, step=10)
        if st.form_submit_button("Train and attach", disabled=busy):
            start_training(service, name, qa, int(synthetic), int(steps))
            st.rerun()


def start_training(service: ActingService, name: str, qa: Any, synthetic: int, steps: int) -> None:
    from app.jobs.handlers import new_upload_folder

    folder = new_upload_folder(service.settings, "lloco-qa-")
    qa_file = None
    if qa is not None:
        qa_file = folder / Path(qa.name).name
        qa_file.write_bytes(qa.getvalue())
    job = service.queue_train(get_jobs(), name, qa_file=qa_file, synthetic=synthetic, steps=steps, cleanup=folder)
    remember(job, "collections")


def delete_section(service: ActingService, name: str, busy: bool) -> None:
    confirmed = st.checkbox(f"I want to delete the collection {name!r} with all its documents and conversations",
                            key=f"confirm-delete-{name}")
    if confirmed and st.button("Delete collection", type="primary", disabled=busy) and \
            run_safely(lambda: service.delete_collection(name)):
        st.session_state.pop("current_collection", None)
        st.rerun()


def _job_result(job: Job) -> None:
    if job.kind == "ingest":
        show_ingest_results(job.result or [])
    elif job.kind == "train" and job.result is not None:
        r = job.result  # app.training.train.AdapterTrainResult (JSON when another process's worker ran it)
        r = SimpleNamespace(**r) if isinstance(r, dict) else r
        st.caption(f"Adapter `{r.path}` attached: {r.steps} steps on {r.examples} examples, "
                   f"loss {r.first_loss:.3f} → {r.last_loss:.3f}.")
    elif job.result is not None:
        st.caption(str(job.result))


def collections_page() -> None:
    service = require_admin_page(get_service())
    st.title("Collections")
    create_form(service, expanded=not service.list_collections())
    collections_table(service)
    name = collection_picker(service, "admin-collection")
    if name is None:
        return
    busy = busy_banner(name)
    job_panel("collections", collection=name, on_done=_job_result)
    documents, rebuild, adapter, delete = st.tabs(["Documents", "Rebuild", "Adapter", "Delete"])
    with documents:
        documents_section(service, name, busy is not None)
    with rebuild:
        rebuild_section(service, name, busy is not None)
    with adapter:
        adapter_section(service, name, busy is not None)
    with delete:
        delete_section(service, name, busy is not None)
