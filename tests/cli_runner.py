"""Run the ``lloco`` CLI in-process through its real entry point (tests only)."""

from __future__ import annotations

import sys


def run_cli(monkeypatch, capsys, *args: str, service=None) -> tuple[int, str, str]:
    """``lloco ARGS`` -> (exit code, stdout, stderr); wide terminal so tables are not folded.

    ``service``: the LlocoService the commands use (e.g. one on a tiny model); default: a new one."""
    from app import cli

    monkeypatch.setattr(sys, "argv", ["lloco", *args])
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setattr(cli.State, "service", service)
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err
