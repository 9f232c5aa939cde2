"""Run the ``lloco`` CLI in-process through its real entry point (tests only).

Rich wraps console output at the terminal width, and under pytest that width depends on the
environment (``COLUMNS``, a tty or not): a long temporary path in a message could be folded in
the middle. Every CLI test goes through :func:`run_cli`, which fixes both consoles' width, and
asserts on :func:`flat` text (whitespace collapsed) or on ``--json`` output.
"""

from __future__ import annotations

import sys

WIDTH = 10_000  # wider than any line a test prints: nothing is ever folded


def flat(text: str) -> str:
    """``text`` with every run of whitespace (including line breaks) collapsed to one space."""
    return " ".join(text.split())


def run_cli(monkeypatch, capsys, *args: str, service=None) -> tuple[int, str, str]:
    """``lloco ARGS`` -> (exit code, stdout, stderr), printed at a fixed, very wide console width.

    ``service``: the LlocoService the commands use (e.g. one on a tiny model); default: the one the test
    set as ``cli.State.service``, else a new one."""
    from app.cli import main as cli
    from app.cli import shared as cli_shared

    monkeypatch.setattr(sys, "argv", ["lloco", *args])
    for console in (cli_shared.out, cli_shared.err):
        monkeypatch.setattr(console, "_width", WIDTH)
    # the given service, else the one a test set (cli.State.service), else a new one; restored after the test
    monkeypatch.setattr(cli.State, "service", service if service is not None else cli.State.service)
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err
