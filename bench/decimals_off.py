"""Issue 27 item 1's "before" arm: `lloco eval run` with the decimal guard off (every answer may end
anywhere, as before ``app.core.answerers.decimals_kept``), everything else as the product runs it.

Usage: .venv/bin/python -m bench.decimals_off [lloco CLI arguments ...]
e.g.   LLOCO_HOME=.cache/eval-nr .venv/bin/python -m bench.decimals_off --set max_new_tokens=96 \\
           eval run --run-name dec0-financebench --modes rag,lloco --top-k 4 --dataset financebench --path ...
Then bench.pair_runs HOME:nr3-financebench:MODE HOME:dec0-financebench:MODE (the guard on vs off).
"""

from __future__ import annotations

import sys


def main() -> None:
    from app.cli.main import main as cli
    from app.core import answerers

    answerers.decimals_kept = lambda _sources: (lambda _text: True)  # the answerer looks it up per answer
    sys.argv = ["lloco", *sys.argv[1:]]
    cli()


if __name__ == "__main__":
    main()
