"""Ingestion with and without parsing the next file ahead (issue 14, item 3): the same files into
fresh collections of one service, the two arms alternated (off, on, on, off, ...) so drift in the
machine's speed falls on both; prints each run's wall time and the ratio. Run it alone on the machine.

Usage: .venv/bin/python -m bench.ingest_overlap --files 8 [--rounds 2] [--folder ../shared/eval-data/financebench/pdfs]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=Path("../shared/eval-data/financebench/pdfs"))
    parser.add_argument("--files", type=int, default=8, help="the smallest N PDFs of the folder")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs per arm (off/on, then on/off, ...)")
    args = parser.parse_args()

    from app.config import Settings
    from app.core.service import LlocoService
    from indexing.pipeline import Pipeline

    files = sorted(args.folder.glob("*.pdf"), key=lambda p: p.stat().st_size)[: args.files]
    with tempfile.TemporaryDirectory() as home:
        service = LlocoService(Settings(home=Path(home)))
        warm = service.create_collection("warm-up")
        Pipeline(service.index(service.collection_row(warm.name)), service.deriver(service.collection_row(warm.name)),
                 prefetch=False).ingest(files[:1])
        seconds: dict[bool, list[float]] = {False: [], True: []}
        chunks = 0
        for run in range(2 * args.rounds):
            prefetch = run % 4 in (1, 2)  # off, on, on, off, ...
            row = service.collection_row(service.create_collection(f"run-{run}").name)
            started = time.perf_counter()
            results = Pipeline(service.index(row), service.deriver(row), prefetch=prefetch).ingest(files)
            seconds[prefetch].append(time.perf_counter() - started)
            chunks = sum(r.n_chunks for r in results)
            assert all(r.status == "ingested" for r in results), [r.error for r in results if r.error]
    pages = sum(len(__import__("pypdf").PdfReader(f).pages) for f in files)
    off, on = statistics.median(seconds[False]), statistics.median(seconds[True])
    print(f"{len(files)} PDFs, {pages} pages, {chunks} chunks; runs (s): off {seconds[False]}, on {seconds[True]}")
    print(f"| parse ahead | median s | pages/s | x off |\n|---|---|---|---|\n| off | {off:.1f} | {pages / off:.2f} | 1.00 |\n"
          f"| on | {on:.1f} | {pages / on:.2f} | {off / on:.2f} |")


if __name__ == "__main__":
    main()
