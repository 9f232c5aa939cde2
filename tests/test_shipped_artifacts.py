"""The trained compressor and reader adapter that ship with the product: present, loaded by
default, belonging together, and the compressor's summary vectors carry their text's content."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from model.artifacts import SHIPPED, shipped_compressor, shipped_reader_adapter

pytestmark = pytest.mark.integration
DECODER = "smollm2-135m"


def test_both_artifacts_ship_with_their_logs_and_curves():
    for part in ("compressor", "reader"):
        folder = SHIPPED / DECODER / part
        assert (folder / "log.jsonl").is_file() and (folder / "loss.png").is_file(), folder
    assert shipped_compressor(DECODER) and shipped_reader_adapter(DECODER)
    meta = json.loads((SHIPPED / DECODER / "compressor" / "compressor.json").read_text())
    assert meta["kappa"] == 8 and meta["trained_steps"] > 0 and meta["hidden_size"] == 576


def test_the_default_service_loads_them(real_service):
    compressor = real_service.compressor
    assert compressor.trained and compressor.projection is not None and compressor.kappa == 8
    assert Path(compressor.runner.name).name != real_service.decoder.name  # the LoRA-merged private copy
    real_service.create_collection("shipped-default")
    row = real_service.collection_row("shipped-default")
    assert real_service.adapter_for(row) == shipped_reader_adapter(DECODER)
    real_service.delete_collection("shipped-default")


def test_the_reader_was_trained_on_the_shipped_compressor(real_service):
    meta = json.loads((SHIPPED / DECODER / "reader" / "lloco_adapter.json").read_text())
    assert meta["compressor"] == real_service.compressor.ident  # an ident is a digest of the weights


def test_summary_vectors_help_the_decoder_predict_the_next_segment(real_service):
    """Next-segment NLL with S is lower than with no context, on the demo documents' text."""
    import torch

    from model.segment_pairs import (
        assemble,
        summary_then_next,
        text_then_next,
        token_scores,
    )

    decoder = real_service.decoder
    text = " ".join((Path(__file__).parents[1] / "data" / "demo" / name).read_text() for name in ("tides.md", "coffee.txt"))
    ids = decoder.encode(text)
    pairs = [(ids[i:i + 192], ids[i + 192:i + 256]) for i in range(0, len(ids) - 256, 256)][:6]
    assert len(pairs) >= 3
    vectors = real_service.compressor.compress([a for a, _ in pairs])
    totals = {"none": 0.0, "summary": 0.0}
    with decoder.session(None) as model:
        for key in totals:
            rows = [text_then_next([], b, decoder.embed_ids) if key == "none"
                    else summary_then_next(v.to(decoder.dtype), b, decoder.embed_ids) for v, (_, b) in zip(vectors, pairs, strict=True)]
            embeds, mask, labels = assemble(rows, dtype=decoder.dtype)
            logits = model(inputs_embeds=embeds, attention_mask=mask).logits
            nll, n, _ = token_scores(logits, labels, skip_first=True)
            totals[key] = float(nll) / n
    assert totals["summary"] < totals["none"] - 0.05, totals
    assert torch.isfinite(torch.tensor(list(totals.values()))).all()
