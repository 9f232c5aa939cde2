"""The summary-token compressor: shapes, batching, determinism and checkpoint formats."""

from __future__ import annotations

import json

import pytest
import torch

from model.compressor import (
    Compressor,
    compressor_ident,
    load_compressor,
    save_compressor,
)
from model.errors import InvalidInputError, ModelNotAvailableError, NotFoundError

CHUNKS = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30], [40]]


def test_summary_vectors_have_kappa_rows_of_hidden_size(tiny_decoder):
    comp = load_compressor("untrained", tiny_decoder, kappa=3)
    out = comp.compress(CHUNKS)
    assert not comp.trained and comp.kappa == 3 and "untrained" in comp.ident
    assert [tuple(v.shape) for v in out] == [(3, tiny_decoder.hidden_size)] * len(CHUNKS)
    assert all(v.dtype == torch.float16 for v in out)
    # different chunks give different summaries
    assert not torch.allclose(out[0].float(), out[1].float())


def test_batched_left_padding_equals_one_by_one(tiny_decoder):
    comp = load_compressor("untrained", tiny_decoder, kappa=4)
    together = comp.compress(CHUNKS, batch_size=4)
    alone = [comp.compress([c], batch_size=1)[0] for c in CHUNKS]
    for a, b in zip(together, alone, strict=True):
        torch.testing.assert_close(a.float(), b.float(), atol=2e-3, rtol=2e-3)


def test_untrained_compressor_is_deterministic_across_loads(tiny_decoder):
    a = load_compressor("untrained", tiny_decoder, kappa=2)
    b = load_compressor(None, tiny_decoder, kappa=2)
    torch.testing.assert_close(a.summary_embeddings, b.summary_embeddings)
    assert a.ident == b.ident


def test_empty_and_overlong_chunks_are_refused(tiny_decoder):
    comp = load_compressor("untrained", tiny_decoder, kappa=2)
    with pytest.raises(InvalidInputError, match="empty chunk"):
        comp.compress([[1], []])
    with pytest.raises(InvalidInputError, match="longer than the compressor's window"):
        comp.compress([[5] * (tiny_decoder.max_context + 1)])


def test_lloco_checkpoint_round_trip_with_merged_lora(tiny_decoder, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    emb = torch.randn(3, tiny_decoder.hidden_size)
    save_compressor(tmp_path / "ckpt", emb, base="tiny", hidden_size=tiny_decoder.hidden_size)
    base = AutoModelForCausalLM.from_pretrained(tiny_decoder.folder, dtype=torch.float32)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "ckpt" / "lora")
    comp = load_compressor(str(tmp_path / "ckpt"), tiny_decoder, kappa=3)
    assert comp.trained and comp.runner is not tiny_decoder  # the LoRA is merged into a private copy
    torch.testing.assert_close(comp.summary_embeddings, emb)
    again = load_compressor(str(tmp_path / "ckpt"), tiny_decoder, kappa=3)
    assert comp.ident == again.ident
    torch.testing.assert_close(comp.compress(CHUNKS)[2], again.compress(CHUNKS)[2])
    # the merged LoRA changes the summaries compared to the same embeddings on the plain decoder
    plain = Compressor(tiny_decoder, emb, trained=True, ident="plain")
    assert not torch.allclose(plain.compress(CHUNKS)[2].float(), comp.compress(CHUNKS)[2].float(), atol=1e-3)
    with pytest.raises(InvalidInputError, match="has 3 summary tokens; 5 were asked"):
        load_compressor(str(tmp_path / "ckpt"), tiny_decoder, kappa=5)


def test_autocompressor_folder_is_read(tiny_decoder, tmp_path):
    """An AutoCompressor checkpoint: a causal LM folder with an extra embed_summary.weight."""
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "autocompressor"
    AutoModelForCausalLM.from_pretrained(tiny_decoder.folder).save_pretrained(folder)
    weights = load_file(folder / "model.safetensors")
    weights["model.embed_summary.weight"] = torch.randn(6, tiny_decoder.hidden_size)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "summary_length": 6}))
    comp = load_compressor(str(folder), tiny_decoder, kappa=4)
    torch.testing.assert_close(comp.summary_embeddings, weights["model.embed_summary.weight"][:4])
    assert comp.compress(CHUNKS)[0].shape == (4, tiny_decoder.hidden_size)
    assert compressor_ident(str(folder), kappa=4) == comp.ident  # from the files alone


def test_bad_checkpoints_are_refused(tiny_decoder, tmp_path):
    with pytest.raises(NotFoundError):
        load_compressor(str(tmp_path / "missing"), tiny_decoder, kappa=2)
    plain = tmp_path / "plain"
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(tiny_decoder.folder).save_pretrained(plain)
    with pytest.raises(ModelNotAvailableError, match="embed_summary"):
        load_compressor(str(plain), tiny_decoder, kappa=2)
    save_compressor(tmp_path / "wrong", torch.zeros(2, 7), base="x", hidden_size=7)
    with pytest.raises(ModelNotAvailableError, match="hidden size 7"):
        load_compressor(str(tmp_path / "wrong"), tiny_decoder, kappa=2)


def test_a_learned_projection_maps_the_hidden_states(tiny_decoder, tmp_path):
    d = tiny_decoder.hidden_size
    emb = torch.randn(3, d)
    save_compressor(tmp_path / "plain", emb, base="tiny", hidden_size=d)
    plain = load_compressor(str(tmp_path / "plain"), tiny_decoder, kappa=3)
    assert plain.projection is None
    hidden = plain.compress([[5, 6, 7, 8]])[0].float()  # (3, d): the raw final hidden states
    weight, bias = torch.eye(d) * 0.5, torch.arange(d, dtype=torch.float32) / d
    save_compressor(tmp_path / "proj", emb, base="tiny", hidden_size=d, projection=(weight, bias))
    projected = load_compressor(str(tmp_path / "proj"), tiny_decoder, kappa=3)
    assert projected.projection is not None and projected.ident != plain.ident  # same embeddings, other weights
    vectors = projected.compress([[5, 6, 7, 8]])[0].float()
    assert torch.allclose(vectors, hidden * 0.5 + bias, atol=2e-3)  # float16 storage


def test_a_copied_checkpoint_keeps_its_identity(tiny_decoder, tmp_path):
    import shutil

    d = tiny_decoder.hidden_size
    save_compressor(tmp_path / "a", torch.randn(3, d), base="tiny", hidden_size=d,
                    projection=(torch.eye(d), torch.zeros(d)))
    shutil.copytree(tmp_path / "a", tmp_path / "elsewhere")
    ident = load_compressor(str(tmp_path / "a"), tiny_decoder, kappa=3).ident
    assert ident == load_compressor(str(tmp_path / "elsewhere"), tiny_decoder, kappa=3).ident
    # the same ident from the files alone, without a model (what a collection's check reads)
    assert compressor_ident(str(tmp_path / "elsewhere"), kappa=3) == ident
    assert compressor_ident("untrained", kappa=3) == load_compressor("untrained", tiny_decoder, kappa=3).ident
    assert compressor_ident(str(tmp_path / "a"), kappa=2) != ident
    with pytest.raises(InvalidInputError, match="has 3 summary tokens; 4 were asked for"):
        compressor_ident(str(tmp_path / "a"), kappa=4)
    with pytest.raises(NotFoundError, match="not found"):
        compressor_ident(str(tmp_path / "nowhere"), kappa=3)
