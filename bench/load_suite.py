"""Load suite (issue 12): 8 concurrent questions — mixed modes and collections — while an ingest and a
delete run on the same collection, through the service and through the API server (HTTP on loopback,
the server the web clients talk to). Checks: 0 errors (no "database is locked"); every question that
is restricted to documents the churn does not touch gets exactly its sequential greedy answer (text
and citations); and retrieval probes running through the churn never see a half-deleted document
(each hit's chunk text and summary vectors are exactly what was stored for it, never erased rows).

Usage: .venv/bin/python -m bench.load_suite [--rounds 3] [--via service,http] [--home DIR]
Prints one line per round, then "N questions, E errors, M mismatched, H half-deleted reads"; exits 1
when any is not 0. The settings are the environment's (LLOCO_*): the default models unless told otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from app.core.service import LlocoService

Via = Literal["service", "http"]
TOPICS = {  # collection -> {document: text}
    "harbour": {"lamps.txt": "The keeper lit the lamps at dusk; the lighthouse burned whale oil until 1850. ",
                "ships.txt": "Forty ships a week passed Pellow Point; the pilot boat met each of them. ",
                "storms.txt": "The great storm of 1881 tore the lantern's glass and flooded the keeper's house. "},
    "garden": {"bees.txt": "Honeybees dance to tell their sisters where the clover and the heather flower. ",
               "roses.txt": "The rose garden holds 112 varieties, pruned each March by the head gardener. "},
}
VICTIM = ("victim.txt", "The old fog signal was a cannon fired every ten minutes in thick weather. ")
NEWCOMER = ("newcomer.txt", "A radio beacon replaced the fog cannon in 1932, sending its call sign twice a minute. ")
QUESTIONS = [  # (collection, question, mode)
    ("harbour", "What did the lighthouse burn?", "lloco"), ("harbour", "How many ships passed each week?", "rag"),
    ("harbour", "When was the great storm?", "lloco-pure"), ("harbour", "Who met the ships?", "rag"),
    ("garden", "How do bees tell where flowers are?", "lloco"), ("garden", "How many rose varieties?", "rag"),
    ("garden", "When are the roses pruned?", "lloco"), ("harbour", "What happened to the lantern?", "lloco-pure"),
]


@dataclass
class RoundResult:
    via: str
    questions: int = 0
    errors: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    half_deleted: int = 0
    probes: int = 0


def setup(service: LlocoService, folder: Path, *, repeat: int = 12) -> dict[str, list[int]]:
    """The two collections with their stable documents; the victim in 'harbour'. Stable ids per collection."""
    folder.mkdir(parents=True, exist_ok=True)
    stable: dict[str, list[int]] = {}
    for name, docs in TOPICS.items():
        service.create_collection(name)
        paths = []
        for filename, text in docs.items():
            (folder / filename).write_text(text * repeat)
            paths.append(folder / filename)
        stable[name] = [r.document_id for r in service.ingest(name, paths)]
    for filename, text in (VICTIM, NEWCOMER):
        (folder / filename).write_text(text * repeat)
    return stable


def _answer_key(answer: Any) -> tuple:
    """What must match the sequential answer: the text and each citation's document, page and snippet."""
    if isinstance(answer, dict):  # the API's JSON body
        return answer["answer"], tuple((s["document"], s["page"], s["snippet"]) for s in answer["sources"])
    return answer.text, tuple((c.document, c.page, c.snippet) for c in answer.citations)


def sequential(service: LlocoService, stable: dict[str, list[int]]) -> list[tuple]:
    return [_answer_key(service.ask(c, q, mode=m, top_k=2, document_ids=stable[c]).read()) for c, q, m in QUESTIONS]


def _stored_truth(service: LlocoService) -> dict[tuple[int, int], tuple[str, bytes]]:
    """Every chunk of 'harbour' now: (chunk id, document id) -> (text, summary vectors' bytes). (SQLite
    may give a new chunk the id of a deleted one: the pair tells them apart.)"""
    from sqlalchemy import select

    from indexing.catalog import Chunk

    index = service.answerer("harbour", "rag").index
    with service.sessions() as session:
        rows = session.execute(select(Chunk.id, Chunk.document_id, Chunk.text, Chunk.summary_row).where(
            Chunk.collection_id == index.collection_id)).all()
    vectors = index.summary_vectors([r.summary_row for r in rows])
    return {(r.id, r.document_id): (r.text, v.tobytes()) for r, v in zip(rows, vectors, strict=True)}


def _asker(service: LlocoService, via: Via, base: str | None, key: str | None) -> Callable[..., tuple]:
    if via == "service":
        return lambda c, q, m, ids: _answer_key(service.ask(c, q, mode=m, top_k=2, document_ids=ids).read())
    import httpx

    client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=600)

    def ask(c: str, q: str, m: str, ids: list[int]) -> tuple:
        reply = client.post(f"/api/collections/{c}/ask", json={"question": q, "mode": m, "top_k": 2,
                                                                "document_ids": ids, "stream": False})
        if reply.status_code != 200:
            raise RuntimeError(f"HTTP {reply.status_code}: {reply.text[:300]}")
        return _answer_key(reply.json())

    return ask


def one_round(service: LlocoService, stable: dict[str, list[int]], reference: list[tuple], folder: Path, *,
              via: Via, base: str | None = None, key: str | None = None) -> RoundResult:
    """The victim is in 'harbour' and the newcomer is not: 8 questions, an ingest of the newcomer, a
    delete of the victim and retrieval probes, all at once; then the newcomer is removed and the
    victim put back for the next round."""
    from indexing.retrieval import Retriever

    result = RoundResult(via)
    truth = _stored_truth(service)  # the victim's chunks as stored, before the delete
    ask = _asker(service, via, base, key)
    start, lock = threading.Barrier(8 + 3), threading.Lock()
    churn_done = threading.Event()

    def question(i: int) -> None:
        collection, text, mode = QUESTIONS[i]
        start.wait()
        try:
            got = ask(collection, text, mode, stable[collection])
        except Exception as exc:  # noqa: BLE001 - counted
            with lock:
                result.errors.append(f"q{i} ({mode}): {type(exc).__name__}: {exc}")
            return
        with lock:
            result.questions += 1
            if got != reference[i]:
                result.mismatched.append(f"q{i} ({mode}): {got[0]!r} != {reference[i][0]!r}")

    def churn(what: str) -> None:
        start.wait()
        try:
            if what == "ingest":
                service.ingest("harbour", [folder / NEWCOMER[0]])
            else:
                service.delete_document("harbour", VICTIM[0])
        except Exception as exc:  # noqa: BLE001 - counted
            with lock:
                result.errors.append(f"{what}: {type(exc).__name__}: {exc}")

    def probe() -> None:
        retriever = Retriever(service.sessions, service.answerer("harbour", "rag").index, service.embedder)
        start.wait()
        while True:
            last = churn_done.is_set()
            try:
                hits = retriever.search("fog signal cannon radio beacon", 4, with_summaries=True)
            except Exception as exc:  # noqa: BLE001 - counted
                with lock:
                    result.errors.append(f"probe: {type(exc).__name__}: {exc}")
                return
            for hit in hits:
                known = truth.get((hit.chunk.id, hit.chunk.document_id))
                if known is None:  # the newcomer's chunk: must not be an erased (all-zero) row
                    bad = not hit.summary.any()
                else:
                    bad = (hit.chunk.text, hit.summary.tobytes()) != known
                with lock:
                    result.probes += 1
                    result.half_deleted += bad
            if last:
                return

    threads = [threading.Thread(target=question, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=churn, args=(w,)) for w in ("ingest", "delete")]
    threads.append(threading.Thread(target=probe))
    for t in threads:
        t.start()
    for t in threads[:-1]:
        t.join()
    churn_done.set()
    threads[-1].join()
    service.delete_document("harbour", NEWCOMER[0])  # back to the round's starting state
    service.ingest("harbour", [folder / VICTIM[0]])
    return result


def run(service: LlocoService, folder: Path, *, rounds: int = 3, via: tuple[Via, ...] = ("service", "http"),
        say: Callable[[str], None] = print) -> list[RoundResult]:
    """Set up, take the sequential reference, then ``rounds`` rounds per way in; the results."""
    from app.accounts.store import Accounts
    from app.api.server import serve_in_thread

    stable = setup(service, folder)
    service.ingest("harbour", [folder / VICTIM[0]])
    reference = sequential(service, stable)
    accounts = Accounts(service.sessions)
    accounts.create_user("load", "load-suite-password", role="admin")
    key = accounts.new_api_key("load")
    results = []
    for way in via:
        for n in range(rounds):
            if way == "http":
                with serve_in_thread(service) as base:
                    r = one_round(service, stable, reference, folder, via="http", base=base, key=key)
            else:
                r = one_round(service, stable, reference, folder, via="service")
            results.append(r)
            say(f"{way} round {n + 1}: {r.questions} answered, {len(r.errors)} errors, {len(r.mismatched)} mismatched, "
                f"{r.half_deleted} half-deleted reads in {r.probes} probed hits" + "".join(
                    f"\n  {e}" for e in r.errors + r.mismatched))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--via", default="service,http", help="comma-separated: service, http")
    parser.add_argument("--home", type=Path, help="a new folder for the suite's home (default: a temporary one)")
    args = parser.parse_args()
    from app.config import Settings
    from app.core.service import LlocoService

    home = args.home or Path(tempfile.mkdtemp(prefix="lloco-load-"))
    service = LlocoService(Settings(home=home))
    results = run(service, home / "files", rounds=args.rounds, via=tuple(args.via.split(",")))
    asked = sum(r.questions for r in results) + sum(len(r.errors) for r in results)
    errors, mismatched = sum(len(r.errors) for r in results), sum(len(r.mismatched) for r in results)
    half = sum(r.half_deleted for r in results)
    print(f"{asked} questions, {errors} errors, {mismatched} mismatched, {half} half-deleted reads "
          f"({sum(r.probes for r in results)} probed hits)")
    return 1 if errors or mismatched or half else 0


if __name__ == "__main__":
    sys.exit(main())
