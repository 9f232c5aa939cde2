"""Serving memory (issue 14): the resident set of the server process with the default models, after it
has answered one question in every mode — `lloco api`, or with ``--web`` the web app and the API in
one process (`make run API=1`). Read from /proc: VmRSS (now) and VmHWM (peak). Memory, not time:
the figure does not depend on what else the machine runs.

Usage: .venv/bin/python -m bench.serving_memory --home HOME --collection NAME --question "..." [--web]
(HOME: a home whose collection was built with the default models, e.g. an evaluation home)
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

MODES = ("lloco", "lloco-pure", "rag", "full")
REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_mb(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def main() -> None:
    from app.config import Settings
    from app.api.local import ask_server, find_server

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--question", required=True)
    parser.add_argument("--web", action="store_true", help="the web app with the API in one process")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLOCO_") or k == "LLOCO_MODEL_CACHE"}
    env["LLOCO_HOME"] = str(args.home.resolve())
    api = free_port()
    command = ([sys.executable, "-m", "app.web.serve", "--no-demo", "--api", "--port", str(free_port()),
                "--api-port", str(api)] if args.web else [sys.executable, "-m", "app", "api", "--port", str(api)])
    proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        settings = Settings(home=args.home.resolve())
        deadline = time.monotonic() + 180
        while (found := find_server(settings)) is None or not found[0].endswith(f":{api}"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        url, token = found
        print(f"{'web app + API' if args.web else 'lloco api'} (pid {proc.pid}), started: {memory_mb(proc.pid)}")
        for mode in MODES:
            stream = ask_server(url, token, args.collection, args.question, mode=mode)
            for _ in stream:
                pass
            print(f"after a {mode} answer: " + ", ".join(f"{k} {v:,.0f} MB" for k, v in memory_mb(proc.pid).items()),
                  flush=True)
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
