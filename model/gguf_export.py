"""A transformers decoder (a reader adapter merged in or not) written as a GGUF file for llama.cpp.

Our own writer, on the ``gguf`` package: llama.cpp's converter ships only with its source. The file
has no vocabulary (``tokenizer.ggml.model = "none"`` and the vocabulary size): llama.cpp never
tokenizes for us — prompts go in as input embeddings and answers come out as logits over token ids,
which our own tokenizer decodes. Llama- and Qwen2-architecture decoders with plain RoPE are written;
anything else is refused with a clear message.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from model.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy as np
    from transformers import PreTrainedModel

GgufType = Literal["f32", "f16", "q8_0"]
GGUF_TYPES: tuple[GgufType, ...] = ("f32", "f16", "q8_0")

# transformers class -> (llama.cpp architecture, whether q/k rows are permuted to llama.cpp's RoPE layout)
# llama.cpp's "llama" rotates interleaved pairs, transformers rotates halves: the q and k projections'
# rows are reordered once here (as llama.cpp's converter does); "qwen2" rotates halves like transformers.
ARCHITECTURES = {"LlamaForCausalLM": ("llama", True), "Qwen2ForCausalLM": ("qwen2", False)}

_LAYER_NAMES = {  # transformers name inside a decoder layer -> GGUF name inside blk.N
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight", "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.weight": "attn_k.weight", "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.weight": "attn_v.weight", "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}


def architecture(config) -> tuple[str, bool]:  # noqa: ANN001
    """(llama.cpp architecture, permute q/k) for a transformers config, or a clear error."""
    classes = getattr(config, "architectures", None) or []
    found = next((ARCHITECTURES[c] for c in classes if c in ARCHITECTURES), None)
    if found is None:
        raise InvalidInputError(f"the llama-cpp engine reads Llama and Qwen2 decoders; this one is {classes or 'unknown'}: "
                                "use answer_engine=transformers")
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        raise InvalidInputError(f"the llama-cpp engine does not write RoPE scaling {rope.get('rope_type')!r}: "
                                "use answer_engine=transformers")
    return found


def rope_theta(config) -> float:  # noqa: ANN001
    rope = getattr(config, "rope_parameters", None) or {}
    return float(rope.get("rope_theta", getattr(config, "rope_theta", 10000.0)))


def permute_rows(weight: np.ndarray, n_head: int) -> np.ndarray:
    """Rows of a q/k projection (n_head * head_dim, ...) from halves-rotation order to pairs order."""
    rows = weight.shape[0]
    return weight.reshape(n_head, 2, rows // n_head // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def gguf_tensors(model: PreTrainedModel) -> list[tuple[str, np.ndarray]]:
    """(GGUF name, float32 array in transformers' (out, in) order) for every weight llama.cpp reads."""
    import torch

    config = model.config
    _, permute = architecture(config)
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads
    out: list[tuple[str, np.ndarray]] = []
    for name, tensor in model.state_dict().items():
        array = tensor.detach().to(torch.float32).cpu().numpy()
        if name == "model.embed_tokens.weight":
            out.append(("token_embd.weight", array))
        elif name == "model.norm.weight":
            out.append(("output_norm.weight", array))
        elif name == "lm_head.weight":
            if not getattr(config, "tie_word_embeddings", False):  # tied: llama.cpp reads token_embd
                out.append(("output.weight", array))
        elif name.startswith("model.layers."):
            index, rest = name.removeprefix("model.layers.").split(".", 1)
            if rest not in _LAYER_NAMES:
                raise InvalidInputError(f"the llama-cpp engine cannot write {name}: use answer_engine=transformers")
            if permute and rest in ("self_attn.q_proj.weight", "self_attn.q_proj.bias"):
                array = permute_rows(array, n_head)
            elif permute and rest in ("self_attn.k_proj.weight", "self_attn.k_proj.bias"):
                array = permute_rows(array, n_kv)
            out.append((f"blk.{index}.{_LAYER_NAMES[rest]}", array))
        elif "rotary_emb" not in name:
            raise InvalidInputError(f"the llama-cpp engine cannot write {name}: use answer_engine=transformers")
    return out


def write_gguf(model: PreTrainedModel, path: Path, *, gguf_type: GgufType) -> Path:
    """``model`` as the GGUF file ``path`` (written to a temporary name, then renamed: a reader never
    sees half a file). Matrices in ``gguf_type``; norms and biases stay float32, as llama.cpp wants."""
    import gguf
    import numpy as np

    if gguf_type not in GGUF_TYPES:
        raise InvalidInputError(f"unknown GGUF type {gguf_type!r}: one of {', '.join(GGUF_TYPES)}")
    config = model.config
    arch, _ = architecture(config)
    n_head = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-", suffix=".part")
    os.close(handle)
    try:
        writer = gguf.GGUFWriter(tmp, arch)
        writer.add_name(str(getattr(config, "_name_or_path", "") or arch))
        writer.add_context_length(int(config.max_position_embeddings))
        writer.add_embedding_length(int(config.hidden_size))
        writer.add_block_count(int(config.num_hidden_layers))
        writer.add_feed_forward_length(int(config.intermediate_size))
        writer.add_head_count(int(n_head))
        writer.add_head_count_kv(int(config.num_key_value_heads))
        writer.add_key_length(int(head_dim))
        writer.add_value_length(int(head_dim))
        writer.add_rope_dimension_count(int(head_dim))
        writer.add_rope_freq_base(rope_theta(config))
        writer.add_layer_norm_rms_eps(float(config.rms_norm_eps))
        writer.add_vocab_size(int(config.vocab_size))
        writer.add_tokenizer_model("none")  # no vocabulary: see the module's docstring
        writer.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                              "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[gguf_type])
        for name, array in gguf_tensors(model):
            if array.ndim < 2 or gguf_type == "f32":
                writer.add_tensor(name, np.ascontiguousarray(array, dtype=np.float32))
            elif gguf_type == "f16":
                writer.add_tensor(name, array.astype(np.float16))
            elif array.shape[-1] % 32 == 0:  # Q8_0 blocks are 32 values of a row
                quantized = gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0)
                writer.add_tensor(name, quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
            else:
                writer.add_tensor(name, array.astype(np.float16))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
