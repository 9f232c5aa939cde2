"""Who may do what (issue 11): the one owner of the access policy, enforced in the service layer.

:class:`ActingService` is :class:`app.core.service.LlocoService` as one principal sees it: the same calls,
each checked before it runs. The web app and the API act through it as the signed-in user; the CLI
uses the plain service as the local admin (it owns the files).

The policy:

- an **admin** does everything: builds, changes and deletes collections, reads all of them;
- an **analyst** sees and asks only the collections granted to them; any other collection is
  reported exactly as a missing one (so names don't leak), even to an admin action on it, and
  admin actions on the collections they may read are refused;
- a conversation belongs to its user: others (admins included) neither list nor open it.

Every refused action is logged (warning, logger ``app.accounts.access``) with who and what.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from app.accounts.store import Accounts, Principal
from app.config import as_path
from app.jobs.handlers import queue_ingest, queue_rebuild, queue_train
from app.training.train import train_collection_adapter
from model.train_adapter import COLLECTION_STEPS
from indexing.catalog import missing_collection
from model.errors import InvalidInputError, NotFoundError, PermissionDeniedError

if TYPE_CHECKING:
    from app.training.train import AdapterTrainResult, StepCallback
    from app.core.answerers import Answer, Answerer, AnswerStream
    from app.core.chats import ChatInfo, ChatMessageInfo, Role
    from app.core.citations import Citation
    from app.config import Mode, Settings
    from app.jobs.runner import Job, JobRunner
    from app.core.page_images import PageImage
    from app.core.infos import CollectionInfo, DocumentInfo
    from app.core.service import LlocoService
    from indexing.pipeline import IngestResult, ProgressCallback
    from indexing.rebuild import RebuildResult
    from model.registry import ModelStatus

log = logging.getLogger(__name__)
T = TypeVar("T")


class ActingService:
    """The service's calls on behalf of ``principal``, each checked by the policy above."""

    def __init__(self, service: LlocoService, principal: Principal, accounts: Accounts | None = None) -> None:
        self.service, self.principal = service, principal
        self.accounts = accounts or Accounts(service.sessions)

    @property
    def settings(self) -> Settings:
        return self.service.settings

    def models(self) -> list[ModelStatus]:
        return self.service.models()

    # the policy ---------------------------------------------------------------------------
    def _refuse(self, what: str, error: Exception) -> Exception:
        log.warning("refused: %s (%s) may not %s", self.principal.name, self.principal.role, what)
        return error

    def require_admin(self, what: str) -> None:
        """Refuse (and log) ``what`` unless the principal is an admin."""
        if not self.principal.is_admin:
            raise self._refuse(what, PermissionDeniedError(f"only an admin may {what}"))

    def check_admin_on(self, name: str, what: str) -> None:
        """An admin action on collection ``name``: one the principal may not read is reported as
        missing (names don't leak), one they may only read is refused."""
        self._readable(name, what)
        self.require_admin(what)

    def check_server_path(self, path: str | Path, what: str) -> Path:
        """``path`` resolved, if it lies under a configured server root (the home and the
        server_roots setting) and the principal is an admin: web and API users never name other
        server paths, nor learn by the error whether one exists."""
        self.require_admin(f"choose {what}")
        resolved = as_path(path).resolve()
        roots = [r.expanduser().resolve() for r in self.settings.resolved_server_roots]
        if not any(resolved.is_relative_to(root) for root in roots):
            raise self._refuse(f"use {what} at {str(path)!r}", InvalidInputError(
                f"{what} must be under a configured server root: {', '.join(map(str, roots))} (the server_roots setting)"))
        if (state := self.settings.home_state(resolved)) is not None:  # the home is a root, its state is not input
            raise self._refuse(f"use {what} at {str(path)!r}", InvalidInputError(f"{what} may not be {state}"))
        return resolved

    def _readable_ids(self) -> set[int] | None:
        """Ids of the collections the principal may read; None: all of them."""
        if self.principal.is_admin:
            return None
        return self.accounts.granted_collection_ids(self.principal.user_id)

    def can_read(self, name: str) -> bool:
        """Whether the principal may see and ask collection ``name`` (False for a missing one)."""
        try:
            self._readable(name, "read")
        except NotFoundError:
            return False
        return True

    def _readable(self, name: str, what: str) -> CollectionInfo:
        info = self.service.get_collection(name)  # NotFoundError for a missing one
        ids = self._readable_ids()
        if ids is not None and info.id not in ids:
            raise self._refuse(f"{what} collection {name!r}", missing_collection(name))  # the words of a missing one
        return info

    def _own_chat(self, chat_id: int, what: str) -> ChatInfo:
        chat = self.service.get_chat(chat_id)
        if chat.user_id != self.principal.user_id:
            raise self._refuse(f"{what} chat #{chat_id}", NotFoundError(f"no chat #{chat_id} (was it or its collection deleted?)"))
        return chat

    def _read(self, name: str, what: str, call: Callable[[], T]) -> T:
        self._readable(name, what)
        return call()

    # collections ----------------------------------------------------------------------------
    def list_collections(self) -> list[CollectionInfo]:
        ids = self._readable_ids()
        return [c for c in self.service.list_collections() if ids is None or c.id in ids]

    def get_collection(self, name: str) -> CollectionInfo:
        return self._readable(name, "read")

    def outdated_models(self, name: str) -> list[str]:
        return self._read(name, "read", lambda: self.service.outdated_models(name))

    def create_collection(self, name: str) -> CollectionInfo:
        self.require_admin(f"create collection {name!r}")
        return self.service.create_collection(name)

    def delete_collection(self, name: str) -> None:
        self.check_admin_on(name, f"delete collection {name!r}")
        self.service.delete_collection(name)

    def set_adapter(self, name: str, adapter: Path | None) -> None:
        self.check_admin_on(name, f"set the adapter of {name!r}")
        self.service.set_adapter(name, None if adapter is None else self.check_server_path(adapter, "adapter folders"))

    def train_adapter(self, name: str, *, qa_file: Path | None = None, synthetic: int = 0,
                      steps: int = COLLECTION_STEPS, progress: StepCallback | None = None) -> AdapterTrainResult:
        self.check_admin_on(name, f"train an adapter for {name!r}")
        qa_file = None if qa_file is None else self.check_server_path(qa_file, "QA files")
        return train_collection_adapter(self.service, name, qa_file=qa_file, synthetic=synthetic, steps=steps,
                                        progress=progress)

    def ingest(self, name: str, paths: list[Path], *, progress: ProgressCallback | None = None) -> list[IngestResult]:
        self.check_admin_on(name, f"add documents to {name!r}")
        return self.service.ingest(name, paths, progress=progress)

    def rebuild_collection(self, name: str, *, progress: ProgressCallback | None = None) -> RebuildResult:
        self.check_admin_on(name, f"rebuild {name!r}")
        return self.service.rebuild_collection(name, progress=progress)

    # queued jobs (app.jobs.handlers): checked here, run later by a worker as the server --------------
    def queue_ingest(self, runner: JobRunner, name: str, paths: list[Path], *, cleanup: Path | None = None) -> Job:
        self.check_admin_on(name, f"add documents to {name!r}")
        return queue_ingest(runner, self.service, name, paths, cleanup=cleanup, owner=self.principal.name)

    def queue_rebuild(self, runner: JobRunner, name: str) -> Job:
        self.check_admin_on(name, f"rebuild {name!r}")
        return queue_rebuild(runner, self.service, name, owner=self.principal.name)

    def queue_train(self, runner: JobRunner, name: str, *, qa_file: Path | None, synthetic: int, steps: int,
                    cleanup: Path | None = None) -> Job:
        self.check_admin_on(name, f"train an adapter for {name!r}")
        return queue_train(runner, self.service, name, qa_file=qa_file, synthetic=synthetic, steps=steps,
                           cleanup=cleanup, owner=self.principal.name)

    # documents ------------------------------------------------------------------------------
    def list_documents(self, name: str) -> list[DocumentInfo]:
        return self._read(name, "list the documents of", lambda: self.service.list_documents(name))

    def delete_document(self, name: str, document: str | int) -> DocumentInfo:
        self.check_admin_on(name, f"delete a document of {name!r}")
        return self.service.delete_document(name, document)

    def document_file(self, document_id: int) -> Path | None:
        return self._read(self.service.document_collection(document_id), f"open document #{document_id} of",
                          lambda: self.service.document_file(document_id))

    def citation_pages(self, citation: Citation, *, scale: float = 1.5) -> list[PageImage]:
        return self._read(self.service.document_collection(citation.document_id), "open a page of",
                          lambda: self.service.citation_pages(citation, scale=scale))

    # questions ------------------------------------------------------------------------------
    def ask(self, name: str, question: str, *, mode: Mode = "lloco", top_k: int | None = None,
            document_ids: list[int] | None = None, instruction: str | None = None,
            history: list[str] | None = None) -> AnswerStream:
        return self._read(name, "ask", lambda: self.service.ask(
            name, question, mode=mode, top_k=top_k, document_ids=document_ids, instruction=instruction, history=history))

    def retrieve(self, name: str, question: str, *, top_k: int | None = None,
                 document_ids: list[int] | None = None) -> list[tuple[Citation, str]]:
        return self._read(name, "search", lambda: self.service.retrieve(name, question, top_k=top_k,
                                                                         document_ids=document_ids))

    def score_continuations(self, name: str, question: str, continuations: list[str], *, mode: Mode = "lloco",
                            top_k: int | None = None, document_ids: list[int] | None = None,
                            instruction: str | None = None) -> list[float]:
        return self._read(name, "ask", lambda: self.service.score_continuations(
            name, question, continuations, mode=mode, top_k=top_k, document_ids=document_ids, instruction=instruction))

    def answerer(self, name: str, mode: Mode, *, instruction: str | None = None) -> Answerer:
        return self._read(name, "ask", lambda: self.service.answerer(name, mode, instruction=instruction))

    # conversations: each belongs to its user ---------------------------------------------------
    def start_chat(self, name: str, title: str | None = None) -> ChatInfo:
        return self._read(name, "chat with", lambda: self.service.start_chat(name, title, user_id=self.principal.user_id))

    def list_chats(self, name: str) -> list[ChatInfo]:
        return self._read(name, "list the chats of", lambda: self.service.list_chats(name, owner=self.principal.user_id))

    def chat_messages(self, chat_id: int) -> list[ChatMessageInfo]:
        self._own_chat(chat_id, "read")
        return self.service.chat_messages(chat_id)

    def record_message(self, chat_id: int, role: Role, text: str, *, answer: Answer | None = None,
                       top_k: int | None = None) -> ChatMessageInfo:
        self._own_chat(chat_id, "write to")
        return self.service.record_message(chat_id, role, text, answer=answer, top_k=top_k)

    def delete_chat(self, chat_id: int) -> None:
        self._own_chat(chat_id, "delete")
        self.service.delete_chat(chat_id)

