"""Start the web app: build the demo collection on first start (with progress), print the URL,
then hand the process over to the Streamlit server.

    python -m app.web.serve [--host 127.0.0.1] [--port 8501] [--no-demo]

This is what ``make run`` does (``make run HOST=0.0.0.0 PORT=8600`` to listen on every interface).
With ``--api`` (``make run API=1``) the REST API (what `lloco api` serves, on ``--api-host``/
``--api-port``, default the api_host/api_port settings) runs in the same process: one set of models
and indexes and one job worker serve the browser, the API and `lloco ask`, instead of two processes
each loading them.
On a catalog without accounts it makes the first admin and prints its one-time password, once.
The demo is built from ``data/demo`` with the current settings (``LLOCO_*``) unless a collection
named ``demo`` already holds every demo file, in which case nothing is loaded before the server.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "streamlit_app.py"


def demo_built(service) -> bool:
    """True when the demo collection exists, was built with the current models and holds every
    demo file, ready (by content hash)."""
    from app.core.demo import DEMO_COLLECTION, demo_files
    from app.core.originals import sha256_of
    from model.errors import NotFoundError

    try:
        if service.outdated_models(DEMO_COLLECTION):
            return False
        docs = service.list_documents(DEMO_COLLECTION)
    except NotFoundError:
        return False
    ready = {d.content_hash for d in docs if d.status == "ready"}
    return all(sha256_of(p) in ready for p in demo_files())


def build_demo() -> None:
    """Create and fill the demo collection unless it is already built (progress bars in the terminal)."""
    from rich.console import Console

    from app.cli.demo import ensure_demo_collection
    from app.core.service import LlocoService

    console = Console()
    service = LlocoService()
    if demo_built(service):
        console.print("demo collection: already built")
        return
    console.print("building the demo collection from data/demo (first start only) ...")
    ensure_demo_collection(service, console)


def first_admin() -> None:
    """On a catalog without accounts, make the first admin and print its one-time password once."""
    from app.accounts.store import Accounts
    from app.config import Settings
    from indexing.catalog import open_catalog

    made = Accounts(open_catalog(Settings().resolved_database_url)).bootstrap_admin()
    if made:
        print(f"\nfirst admin: user {made[0]!r}, one-time password {made[1]}\n(shown once: sign in with it and "
              f"choose your own password; add analysts with `lloco users create NAME`)", flush=True)


def urls(host: str, port: int) -> list[str]:
    """Where a browser reaches the server: localhost, and this machine's address when listening on all."""
    out = [f"http://{'localhost' if host in ('0.0.0.0', '::', '') else host}:{port}"]
    if host in ("0.0.0.0", "::", ""):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the outgoing interface
                address = s.getsockname()[0]
            if not address.startswith("127."):
                out.append(f"http://{address}:{port}")
        except OSError:
            pass
    return out


STREAMLIT_OPTIONS = {"server.headless": True, "browser.gatherUsageStats": False, "server.fileWatcherType": "none",
                     "client.toolbarMode": "minimal", "theme.base": "light"}


def streamlit_command(host: str, port: int) -> list[str]:
    options = {"server.address": host, "server.port": port, **STREAMLIT_OPTIONS}
    return [sys.executable, "-m", "streamlit", "run", str(APP),
            *[part for key, value in options.items() for part in (f"--{key}", str(value).lower() if isinstance(value, bool)
                                                                  else str(value))]]


def run_with_api(host: str, port: int, *, api_host: str | None, api_port: int | None) -> None:
    """Streamlit and the API server in this process over one service and one job runner: the API in a
    thread (announced to `lloco ask` like `lloco api`), Streamlit in the main thread until it stops."""
    from streamlit.web import bootstrap

    from app.api.server import serve_in_thread
    from app.jobs.runner import JobRunner
    from app.core.service import LlocoService
    from app.web.common import use_service

    service = LlocoService()
    jobs = JobRunner(sessions=service.sessions)  # its worker starts with the API server (embedded_worker)
    use_service(service, jobs=jobs)
    api_host, api_port = api_host or service.settings.api_host, api_port or service.settings.api_port
    with serve_in_thread(service, host=api_host, port=api_port, announce=True, jobs=jobs) as url:
        print(f"lloco API (same process): {url} (OpenAPI docs at /docs)", flush=True)
        flags = {key.replace(".", "_"): value for key, value in
                 {"server.address": host, "server.port": port, **STREAMLIT_OPTIONS}.items()}
        os.chdir(REPO)
        bootstrap.load_config_options(flag_options=flags)
        bootstrap.run(str(APP), False, [], flags)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Start lloco's web app (Streamlit).")
    parser.add_argument("--host", default=os.environ.get("LLOCO_WEB_HOST", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every interface; env LLOCO_WEB_HOST)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LLOCO_WEB_PORT", "8501")),
                        help="port (default 8501; env LLOCO_WEB_PORT)")
    parser.add_argument("--no-demo", action="store_true", help="do not build the demo collection")
    parser.add_argument("--api", action="store_true",
                        help="also serve the REST API from this process (one set of models for both; `lloco ask` uses it)")
    parser.add_argument("--api-host", help="with --api: address of the API (default: the api_host setting)")
    parser.add_argument("--api-port", type=int, help="with --api: port of the API (default: the api_port setting)")
    args = parser.parse_args(argv)
    if not args.no_demo:
        build_demo()
    first_admin()
    print("\nlloco web app: " + "  ".join(urls(args.host, args.port))
          + f"   (listening on {args.host}:{args.port}; Ctrl-C stops it)\n", flush=True)
    if args.api:
        run_with_api(args.host, args.port, api_host=args.api_host, api_port=args.api_port)
        return
    os.chdir(REPO)
    os.execv(sys.executable, streamlit_command(args.host, args.port))


if __name__ == "__main__":
    main()
