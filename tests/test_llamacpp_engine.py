"""The llama.cpp answer engine (answer_engine=llama-cpp): our GGUF writer (read back with the gguf
package: names, metadata, weights, the q/k row order llama.cpp's RoPE wants), unsupported decoders
refused; with llama-cpp-python installed (`make llamacpp`), llama.cpp's logits and greedy answers are
transformers' on the same prompt embeddings, with a reader merged in and with the prefix kept."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from model.errors import InvalidInputError, ModelNotAvailableError
from model.gguf_export import permute_rows, write_gguf

needs_llama_cpp = pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None,
                                     reason="llama-cpp-python is not installed (`make llamacpp` compiles it)")


def _hf_model(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)


def _read(path):
    import gguf

    reader = gguf.GGUFReader(str(path))
    tensors = {t.name: t for t in reader.tensors}
    fields = {name: field for name, field in reader.fields.items()}
    return reader, tensors, fields


def _string(field) -> str:
    return bytes(field.parts[field.data[0]]).decode()


def _scalar(field):
    return field.parts[field.data[0]][0]


@pytest.mark.parametrize("gguf_type", ["f32", "f16", "q8_0"])
def test_the_gguf_holds_every_weight_in_llama_cpp_layout(tiny_folder, tmp_path, gguf_type):
    import gguf

    model = _hf_model(tiny_folder)
    path = write_gguf(model, tmp_path / f"m-{gguf_type}.gguf", gguf_type=gguf_type)
    assert not list(tmp_path.glob("*.part"))  # written to a temporary name, renamed
    _, tensors, fields = _read(path)
    config = model.config
    assert _string(fields["general.architecture"]) == "llama"
    assert _string(fields["tokenizer.ggml.model"]) == "none"  # no vocabulary: we tokenize
    assert int(_scalar(fields["llama.vocab_size"])) == config.vocab_size
    assert int(_scalar(fields["llama.block_count"])) == config.num_hidden_layers
    assert int(_scalar(fields["llama.attention.head_count_kv"])) == config.num_key_value_heads
    names = {"token_embd.weight", "output_norm.weight"} | {
        f"blk.{i}.{n}.weight" for i in range(config.num_hidden_layers)
        for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
    assert set(tensors) == names  # tied embeddings: no output.weight

    def values(name):
        t = tensors[name]
        data = gguf.quants.dequantize(t.data, t.tensor_type) if t.tensor_type not in (0, 1) else t.data
        return np.asarray(data, dtype=np.float32).reshape(tuple(reversed([int(d) for d in t.shape])))

    state = {k: v.float().numpy() for k, v in model.state_dict().items()}
    tol = {"f32": 0, "f16": 1e-3, "q8_0": 2e-2}[gguf_type]
    q = state["model.layers.1.self_attn.q_proj.weight"]
    np.testing.assert_allclose(values("blk.1.attn_q.weight"), permute_rows(q, config.num_attention_heads), atol=tol)
    k = state["model.layers.0.self_attn.k_proj.weight"]
    np.testing.assert_allclose(values("blk.0.attn_k.weight"), permute_rows(k, config.num_key_value_heads), atol=tol)
    np.testing.assert_allclose(values("blk.0.ffn_down.weight"), state["model.layers.0.mlp.down_proj.weight"], atol=tol)
    np.testing.assert_allclose(values("token_embd.weight"), state["model.embed_tokens.weight"], atol=tol)
    assert tensors["output_norm.weight"].tensor_type == gguf.GGMLQuantizationType.F32  # norms stay float32
    assert not np.array_equal(permute_rows(q, config.num_attention_heads), q)  # the permutation does something


def test_unsupported_decoders_are_refused(tiny_folder, tmp_path):
    model = _hf_model(tiny_folder)
    model.config.architectures = ["GPT2LMHeadModel"]
    with pytest.raises(InvalidInputError, match="Llama and Qwen2"):
        write_gguf(model, tmp_path / "x.gguf", gguf_type="f32")
    model.config.architectures = ["LlamaForCausalLM"]
    model.config.rope_parameters = {"rope_type": "yarn", "factor": 4.0, "rope_theta": 10000.0}
    with pytest.raises(InvalidInputError, match="RoPE scaling"):
        write_gguf(model, tmp_path / "x.gguf", gguf_type="f32")
    with pytest.raises(InvalidInputError, match="unknown GGUF type"):
        write_gguf(_hf_model(tiny_folder), tmp_path / "x.gguf", gguf_type="q4")  # type: ignore[arg-type]
    assert not (tmp_path / "x.gguf").exists()


def test_without_llama_cpp_the_engine_says_how_to_install_it(monkeypatch, tmp_path):
    from model.llamacpp import LlamaCppEngine

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import fails as if not installed
    with pytest.raises(ModelNotAvailableError, match="make llamacpp"):
        LlamaCppEngine(cache_dir=tmp_path)


def test_the_setting_is_checked():
    from pydantic import ValidationError

    from app.config import Settings

    assert Settings().answer_engine == "transformers" and Settings().gguf_type == "f32"
    with pytest.raises(ValidationError):
        Settings(answer_engine="vllm")
    with pytest.raises(ValidationError):
        Settings(gguf_type="q4_0")


@pytest.fixture
def engine_decoder(tiny_folder, tmp_path):
    """A private decoder (its engine and adapters must not leak) and a llama.cpp engine for it."""
    from model.llamacpp import LlamaCppEngine
    from model.loading import load_decoder

    decoder = load_decoder(tiny_folder, name="tiny", device="cpu", dtype=torch.float32)
    engine = LlamaCppEngine(cache_dir=tmp_path / "gguf", gguf_type="f32", threads=1)
    yield decoder, engine
    engine.close()


def _prompt(decoder, seed: int, n: int = 30):
    ids = torch.randint(5, 300, (n,), generator=torch.Generator().manual_seed(seed)).tolist()
    return decoder.embed_ids(ids).unsqueeze(0).detach()  # (1, n, d)


def _torch_logits(decoder, embeds, forced: list[int], adapter=None):
    """transformers' next-token logits after the prompt and after each forced token: (1 + m, vocab)."""
    rows = torch.cat([embeds, decoder.embed_ids(forced).unsqueeze(0)], dim=1) if forced else embeds
    with decoder.session(adapter) as model:
        logits = model(inputs_embeds=rows).logits[0].float()
    return logits[embeds.shape[1] - 1:]


@needs_llama_cpp
@pytest.mark.parametrize("with_adapter", [False, True])
def test_llama_cpp_logits_are_transformers_logits(engine_decoder, tiny_folder, tmp_path, with_adapter):
    from tests.fakes import tiny_lora

    decoder, engine = engine_decoder
    adapter = tiny_lora(tmp_path / "lora", tiny_folder, seed=4) if with_adapter else None
    forced = [7, 99, 250, 31]
    for seed in range(3):
        embeds = _prompt(decoder, seed)
        with engine.steps(decoder, embeds, adapter=adapter, prefix=None) as step:
            got = torch.stack([step(None)] + [step(t) for t in forced])  # (5, vocab)
        want = _torch_logits(decoder, embeds, forced, adapter)
        torch.testing.assert_close(got, want, atol=2e-3, rtol=1e-3)
    if with_adapter:  # the merged reader is not the base model
        base = _torch_logits(decoder, _prompt(decoder, 0), forced)
        assert not torch.allclose(got, base, atol=1e-2)


@needs_llama_cpp
def test_llama_cpp_answers_are_transformers_answers(engine_decoder, tiny_folder, tmp_path):
    from model.generation import stream_generate
    from tests.fakes import tiny_lora

    decoder, engine = engine_decoder
    adapter = tiny_lora(tmp_path / "lora", tiny_folder, seed=6)
    start = list(range(20, 31))
    for seed in range(3):
        rest = torch.randint(5, 300, (19,), generator=torch.Generator().manual_seed(seed)).tolist()
        embeds = decoder.embed_ids(start + rest).unsqueeze(0).detach()
        for prefix in (None, ("a fixed start", len(start))):
            answers = []
            for eng in (None, engine):
                decoder.engine = eng
                stream = stream_generate(decoder, embeds, max_new_tokens=10, adapter=adapter, prefix=prefix)
                answers.append(("".join(stream), stream.token_ids, stream.n_tokens))
            assert answers[1] == answers[0]
    decoder.engine = None
    kept = next(iter(engine.contexts.values())).kept_prefix
    assert kept == ("a fixed start", len(start))  # the start stays in llama.cpp's cache for the next prompt


@needs_llama_cpp
def test_gguf_files_are_written_once_per_decoder_and_adapter(engine_decoder, tiny_folder, tmp_path):
    from tests.fakes import tiny_lora

    decoder, engine = engine_decoder
    a, b = tiny_lora(tmp_path / "a", tiny_folder, seed=1), tiny_lora(tmp_path / "b", tiny_folder, seed=2)
    paths = {engine.export(decoder, x) for x in (None, a, b)}
    assert len(paths) == 3 and all(p.is_file() for p in paths)
    stamp = {p: p.stat().st_mtime_ns for p in paths}
    assert {engine.export(decoder, x) for x in (None, a, b)} == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == stamp  # reused, not written again
    embeds = _prompt(decoder, 0)
    for x in (None, a, b):
        with engine.steps(decoder, embeds, adapter=x, prefix=None) as step:
            step(None)
    assert len(engine.contexts) == engine.kept == 2  # least recently used context closed
    tiny_lora(tmp_path / "a", tiny_folder, seed=9)  # the adapter retrained in place: a new file
    assert engine.gguf_path(decoder, a) not in paths


@needs_llama_cpp
def test_the_service_answers_with_llama_cpp(settings, tiny_folder, tmp_path):
    from app.core.service import LlocoService
    from tests.fakes import HashEmbedder

    settings.answer_engine = "llama-cpp"
    service = LlocoService(settings, embedder=HashEmbedder())
    assert service.decoder.engine is not None
    service.create_collection("c")
    (tmp_path / "a.txt").write_text("The keeper lit the lamp at dusk every evening of the year. " * 12)
    service.ingest("c", [tmp_path / "a.txt"])
    with_llama = {mode: service.ask("c", "When is the lamp lit?", mode=mode, top_k=2).read() for mode in ("lloco", "rag")}
    engine, service.decoder.engine = service.decoder.engine, None
    with_torch = {mode: service.ask("c", "When is the lamp lit?", mode=mode, top_k=2).read() for mode in ("lloco", "rag")}
    engine.close()
    for mode in ("lloco", "rag"):
        assert with_llama[mode].text == with_torch[mode].text
        assert with_llama[mode].generated_tokens == with_torch[mode].generated_tokens > 0
        assert with_llama[mode].ttft_s is not None
