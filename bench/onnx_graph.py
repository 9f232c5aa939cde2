"""A LLaMA decoder as one exportable graph (input embeddings + explicit KV cache in, last logits +
cache out) for ONNX Runtime and OpenVINO: what bench/cpu_inference.py measures them with.

Batch 1 only (the product answers one question at a time). The graph re-implements the forward
of a transformers ``LlamaForCausalLM`` from its weights (RMSNorm, rotary positions, grouped-query
attention, SwiGLU MLP), so any LoRA must be merged into those weights before export.
:func:`check_against` compares its logits with the transformers model's.
"""

from __future__ import annotations

from pathlib import Path

import torch  # the graph is a torch module: imported only by the candidates that use it
from torch import nn

from model.generation import end_token_ids


class LlamaGraph(nn.Module):
    """``forward(embeds (1, T, d), positions (1, T) int64, past_k (L, kvh, P, hd), past_v)`` ->
    ``(logits (1, V) of the last position, k (L, kvh, P+T, hd), v (L, kvh, P+T, hd))``."""

    def __init__(self, model) -> None:
        super().__init__()
        cfg = model.config
        self.n_layers, self.n_heads, self.n_kv = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        self.eps = cfg.rms_norm_eps
        theta = (getattr(cfg, "rope_parameters", None) or {}).get("rope_theta") or getattr(cfg, "rope_theta", 10000.0)
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        self.register_buffer("inv_freq", inv_freq, persistent=False)  # (hd/2,)
        body = model.get_decoder()
        self.layers = body.layers
        self.norm = body.norm
        self.lm_head = model.get_output_embeddings()

    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * weight

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rotated * sin

    def forward(self, embeds, positions, past_k, past_v):
        t, past = embeds.shape[1], past_k.shape[2]
        freqs = positions[0].float()[:, None] * self.inv_freq[None, :]  # (T, hd/2)
        angles = torch.cat([freqs, freqs], dim=-1)  # (T, hd)
        cos, sin = angles.cos().to(embeds.dtype), angles.sin().to(embeds.dtype)
        # key j is visible to new position i when j <= past + i
        keys = torch.arange(past + t)[None, :]
        rows = torch.arange(t)[:, None] + past
        mask = torch.where(keys <= rows, 0.0, float("-inf")).to(embeds.dtype)  # (T, P+T)
        x = embeds[0]  # (T, d)
        new_k, new_v = [], []
        group = self.n_heads // self.n_kv
        for i, layer in enumerate(self.layers):
            attn = layer.self_attn
            h = self._rms(x, layer.input_layernorm.weight)
            q = attn.q_proj(h).view(t, self.n_heads, self.head_dim).transpose(0, 1)  # (H, T, hd)
            k = attn.k_proj(h).view(t, self.n_kv, self.head_dim).transpose(0, 1)  # (kvh, T, hd)
            v = attn.v_proj(h).view(t, self.n_kv, self.head_dim).transpose(0, 1)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            k = torch.cat([past_k[i], k], dim=1)  # (kvh, P+T, hd)
            v = torch.cat([past_v[i], v], dim=1)
            new_k.append(k)
            new_v.append(v)
            kk = k.repeat_interleave(group, dim=0)  # (H, P+T, hd)
            vv = v.repeat_interleave(group, dim=0)
            scores = (q @ kk.transpose(1, 2)).float() / self.head_dim ** 0.5 + mask.float()  # (H, T, P+T)
            probs = scores.softmax(-1).to(x.dtype)
            out = (probs @ vv).transpose(0, 1).reshape(t, self.n_heads * self.head_dim)  # (T, H*hd)
            x = x + attn.o_proj(out)
            h = self._rms(x, layer.post_attention_layernorm.weight)
            mlp = layer.mlp
            x = x + mlp.down_proj(torch.nn.functional.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
        last = self._rms(x[-1:], self.norm.weight)  # (1, d)
        return self.lm_head(last), torch.stack(new_k), torch.stack(new_v)

    def empty_cache(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.n_layers, self.n_kv, 0, self.head_dim)
        return torch.zeros(shape, dtype=dtype), torch.zeros(shape, dtype=dtype)


def export_onnx(model, path: Path) -> Path:
    """Write ``model`` (a float32 transformers LlamaForCausalLM, LoRA merged) as an ONNX graph at ``path``."""
    graph = LlamaGraph(model).eval()
    d = model.config.hidden_size
    # trace with a non-empty past so the cache concatenation is in the graph with a dynamic length
    past_k, past_v = (torch.zeros(graph.n_layers, graph.n_kv, 3, graph.head_dim) for _ in range(2))
    args = (torch.zeros(1, 2, d), torch.tensor([[3, 4]]), past_k, past_v)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        torch.onnx.export(graph, args, str(path), input_names=["embeds", "positions", "past_k", "past_v"],
                          output_names=["logits", "k", "v"], dynamo=False, opset_version=17,
                          dynamic_axes={"embeds": {1: "t"}, "positions": {1: "t"}, "past_k": {2: "p"},
                                        "past_v": {2: "p"}, "k": {2: "pt"}, "v": {2: "pt"}})
    return path


def check_against(model, graph: LlamaGraph, ids: list[int]) -> float:
    """Max |logit difference| of the graph (prefill of ids[:-1], then one cached step) vs transformers."""
    with torch.no_grad():
        ref = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0]  # (T, V)
        embeds = model.get_input_embeddings()(torch.tensor([ids]))  # (1, T, d)
        past_k, past_v = graph.empty_cache(embeds.dtype)
        n = len(ids) - 1
        first, k, v = graph(embeds[:, :n], torch.arange(n)[None], past_k, past_v)
        second, _, _ = graph(embeds[:, n:], torch.tensor([[n]]), k, v)
    return max(float((first[0] - ref[n - 1]).abs().max()), float((second[0] - ref[n]).abs().max()))


def greedy(logits, step, *, eos: set[int], max_new_tokens: int, min_new_tokens: int = 0) -> torch.Tensor:
    """Greedy ids from the prompt's last ``logits`` (V,), calling ``step(token)`` -> the next logits:
    stops at an end token once ``min_new_tokens`` are out, or at ``max_new_tokens``: (1, n), as the
    candidates' ``generate`` returns them."""
    out: list[int] = []
    for n in range(1, max_new_tokens + 1):
        token = int(logits.argmax())
        out.append(token)
        if (token in eos and n >= min_new_tokens) or n == max_new_tokens:
            break
        logits = step(token)
    return torch.tensor([out])


class GraphRunner:
    """A :class:`LlamaGraph` exported to ONNX, run by ONNX Runtime or OpenVINO with the call shapes
    bench/cpu_inference.py gives a transformers model: ``runner(inputs_embeds=...)`` (a prefill) and
    greedy ``runner.generate(inputs_embeds=..., max_new_tokens=..., min_new_tokens=...)`` -> (1, n) ids."""

    def __init__(self, model, path: Path, *, engine: str, threads: int, precision: str | None = None) -> None:
        import numpy as np

        graph = LlamaGraph(model)
        self.shape = (graph.n_layers, graph.n_kv, 0, graph.head_dim)
        self.table = model.get_input_embeddings().weight.detach().float().numpy()  # (V, d)
        self.eos = end_token_ids(model)
        self.np = np
        if engine == "onnxruntime":
            import onnxruntime as ort

            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self._run = lambda feeds: session.run(None, feeds)
        elif engine == "openvino":
            import openvino as ov

            config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
            if precision:
                config["INFERENCE_PRECISION_HINT"] = precision
            compiled = ov.Core().compile_model(str(path), "CPU", config)
            request = compiled.create_infer_request()
            self._run = lambda feeds: [request.infer(feeds)[out] for out in compiled.outputs]
        else:
            raise ValueError(f"unknown engine {engine!r}")

    def _step(self, embeds, start: int, k, v):
        np = self.np
        feeds = {"embeds": embeds.astype(np.float32), "positions": np.arange(start, start + embeds.shape[1])[None],
                 "past_k": k, "past_v": v}
        logits, k, v = self._run(feeds)
        return logits, k, v

    def __call__(self, *, inputs_embeds, **_):
        np = self.np
        empty = np.zeros(self.shape, dtype=np.float32)
        return self._step(inputs_embeds.float().numpy(), 0, empty, empty)

    def generate(self, *, inputs_embeds, max_new_tokens: int, min_new_tokens: int = 0, **_):
        logits, k, v = self(inputs_embeds=inputs_embeds)
        state = {"position": int(inputs_embeds.shape[1]), "k": k, "v": v}

        def step(token: int):
            logits, state["k"], state["v"] = self._step(self.table[token][None, None], state["position"],
                                                        state["k"], state["v"])
            state["position"] += 1
            return logits[0]

        return greedy(logits[0], step, eos=self.eos, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens)
