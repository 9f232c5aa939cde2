"""Crash suite (issue 12): kill -9 lloco at random points of an ingest, a rebuild and a delete, and
check after each kill that the collection's catalog, FAISS index and summary store agree (after
the recovery every open does), and that running the job again completes it.

Usage: .venv/bin/python -m bench.crash_suite --pdf FILE.pdf [--trials 20] [--home DIR] [--seed 0]
Prints one line per trial, then "N trials, M inconsistent"; exits 1 when M > 0. The settings are
the environment's (LLOCO_*): the default models unless told otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

COLLECTION = "crash"


@dataclass
class Trial:
    what: str
    killed_after_s: float
    problems: list[str]  # after the kill (and the open that follows)
    rerun_ok: bool  # the same job, run again to completion, left a consistent collection with the document

    @property
    def consistent(self) -> bool:
        return not self.problems and self.rerun_ok


def lloco(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {}), "LLOCO_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "app", *args], env=environment, capture_output=True, text=True,
                          timeout=timeout, check=False)


def killed(home: Path, args: list[str], after_s: float, env: dict[str, str] | None = None) -> None:
    """Start ``lloco ARGS`` and kill -9 it after ``after_s`` seconds (if it is still running)."""
    proc = subprocess.Popen([sys.executable, "-m", "app", *args], env={**os.environ, **(env or {}), "LLOCO_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait(after_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def check(home: Path, env: dict[str, str] | None = None) -> list[str]:
    result = lloco(home, "collections", "check", COLLECTION, "--json", env=env)
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [f"check failed: {result.stderr.strip()[-300:]}"]


def documents(home: Path, env: dict[str, str] | None = None) -> list[dict]:
    """The collection's documents as `lloco docs list --json` gives them ([] when that fails)."""
    result = lloco(home, "docs", "list", COLLECTION, "--json", env=env)
    try:
        return json.loads(result.stdout)
    except ValueError:
        return []


def timed(home: Path, args: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = lloco(home, *args, env=env)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"lloco {' '.join(args)} failed: {result.stderr[-500:]}")
    return time.perf_counter() - started


def run_trials(pdf: Path, *, trials: int, home: Path, seed: int = 0, env: dict[str, str] | None = None,
               say=print) -> list[Trial]:
    """``trials`` kills spread over ingest, rebuild and delete; each followed by a check and a rerun."""
    rng = random.Random(seed)
    if lloco(home, "collections", "create", COLLECTION, env=env).returncode not in (0, 2):
        raise RuntimeError("cannot create the collection")
    durations = {"ingest": timed(home, ["ingest", COLLECTION, str(pdf)], env),  # one clean run of each, to time it
                 "delete": timed(home, ["docs", "delete", COLLECTION, pdf.name], env)}
    timed(home, ["ingest", COLLECTION, str(pdf)], env)
    durations["rebuild"] = timed(home, ["collections", "rebuild", COLLECTION], env)
    out = []
    for n in range(trials):
        what = ("ingest", "rebuild", "delete")[n % 3]
        if what == "ingest":  # start from a collection without the document
            lloco(home, "docs", "delete", COLLECTION, pdf.name, env=env)
            args = ["ingest", COLLECTION, str(pdf)]
        elif what == "rebuild":
            args = ["collections", "rebuild", COLLECTION]
        else:
            args = ["docs", "delete", COLLECTION, pdf.name]
        after = rng.uniform(0.1, 1.1) * durations[what]  # sometimes past the end: then nothing is killed
        killed(home, args, after, env)
        problems = check(home, env)
        lloco(home, *args, env=env)  # run the job again to completion
        if what == "delete":
            ingest = lloco(home, "ingest", COLLECTION, str(pdf), env=env)
            rerun_ok = ingest.returncode == 0
        else:
            rerun_ok = True
        rerun_ok = rerun_ok and not check(home, env) and any(
            d["filename"] == pdf.name and d["status"] == "ready" for d in documents(home, env))
        trial = Trial(what, round(after, 2), problems, rerun_ok)
        say(f"trial {n + 1}: {what} killed after {after:.2f} s: "
            f"{'consistent' if not problems else '; '.join(problems)}; rerun {'ok' if rerun_ok else 'FAILED'}")
        out.append(trial)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pdf", type=Path, required=True)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--home", type=Path, help="a home to use (default: a fresh temporary one)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="lloco-crash-"))
    results = run_trials(args.pdf.resolve(), trials=args.trials, home=home, seed=args.seed)
    bad = sum(not t.consistent for t in results)
    print(f"{len(results)} trials, {bad} inconsistent")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
