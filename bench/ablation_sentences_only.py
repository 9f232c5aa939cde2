"""Ablation: lloco mode's expansion sentences *without* the summary vectors, same questions.

If the chosen sentences alone answered as well as vectors + sentences, the summary vectors would
be dead weight; this run tells. The answerer is lloco mode's with the vector contexts dropped
(the sentences are exactly the default mode's: same budget rule, same selection), stored as mode
``lloco`` of a separately named run.

Usage: LLOCO_HOME=... .venv/bin/python -m bench.ablation_sentences_only ARGS...   (ARGS: those of
`lloco eval run`, e.g. --dataset hotpotqa --path FILE --modes lloco --run-name sentences-hotpotqa)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from app.core import answerers
from indexing.retrieval import Hit
from model.prompts import Context


@dataclass
class SentencesOnlyAnswerer(answerers.LlocoAnswerer):
    """lloco mode with only the expansion sentences in the prompt."""

    def contexts(self, hits: list[Hit], question: str, *, top_k: int) -> list[Context]:
        return [c for c in super().contexts(hits, question, top_k=top_k) if c.token_ids is not None]


def main() -> None:
    from app.cli import main as cli

    answerers.ANSWERERS["lloco"] = SentencesOnlyAnswerer  # the service looks answerers up in this dict
    sys.argv = ["lloco", "eval", "run", *sys.argv[1:]]
    cli.main()


if __name__ == "__main__":
    main()
