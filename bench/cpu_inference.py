"""CPU inference candidates against transformers float32 on the same prompts (issue 14, item 2):
prefill tokens/s, decode tokens/s and answer agreement, in one run.

Candidates: ``float32`` (the baseline), ``bfloat16`` (what ``dtype=auto`` picks where the CPU has
AVX512-BF16 or AMX; peft keeps the reader's LoRA weights in float32 by default, casting at every
call), ``bfloat16-lora16`` (the LoRA weights in bfloat16 too), ``bfloat16-merged`` (the reader merged
into a bfloat16 copy, one per adapter), ``int8`` (torch dynamic quantization of every Linear layer of the float32 model:
int8 weights, activations quantized per batch; VNNI/AMX-INT8 kernels). A LoRA adapter cannot sit on
a dynamically quantized layer, so lloco mode's int8 candidate is a copy with the reader merged in,
then quantized; the float candidates carry the reader as peft does at serving time. ``onnxruntime``
and ``openvino`` (when installed: ``pip install onnxruntime openvino``; not project dependencies) run
bench/onnx_graph.py's float32 export of each mode's model (lloco's with the reader merged in);
OpenVINO at its default precision (bfloat16 on a CPU with AMX), ``openvino-f32`` at float32.
``llamacpp-f32``, ``-f16``, ``-bf16`` and ``-q8_0`` run each mode's model converted to GGUF at that type
by llama.cpp (bench/llamacpp_runner.py; needs llama-cpp-python and ``--llama-cpp-convert``).

Prompts are the product's own: for the first ``--limit`` questions of an evaluation collection,
the rag and lloco prompts the answerers build (retrieval, expansion, summary vectors), cast to each
candidate's dtype. Per candidate and mode: the median prefill (one forward over the prompt), the
decode rate (greedy, ``--decode`` forced tokens: a generation of ``--decode`` + 1 tokens timed minus
one of 1 token), and how many greedy answers
(``--answer-tokens``) are identical to float32's. Run it alone on the machine.

Usage: .venv/bin/python -m bench.cpu_inference --home HOME --collection eval-hotpotqa --dataset hotpotqa \
         --path FILE [--limit 10] [--json OUT]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
CANDIDATES = ("float32", "bfloat16", "bfloat16-lora16", "bfloat16-merged", "int8", "onnxruntime", "openvino",
              "openvino-f32", "llamacpp-f32", "llamacpp-f16", "llamacpp-bf16", "llamacpp-q8_0")
GRAPH_ENGINES = {"onnxruntime": ("onnxruntime", None), "openvino": ("openvino", None), "openvino-f32": ("openvino", "f32")}


def candidate_models(base_fp32, adapter: str, name: str, *, tokenizer=None, convert: Path | None = None,
                     work: Path | None = None) -> dict[str, object]:
    """{mode: model} for one candidate: rag reads with the bare model, lloco with the reader adapter."""
    import torch
    from peft import PeftModel

    if name.startswith("llamacpp-"):
        from bench.llamacpp_runner import LlamaCppRunner, convert_model
        from model.generation import end_token_ids

        if convert is None:
            raise SystemExit(f"{name} needs --llama-cpp-convert (llama.cpp's convert_hf_to_gguf.py)")
        merged = PeftModel.from_pretrained(copy.deepcopy(base_fp32), adapter).merge_and_unload().eval()
        eos = end_token_ids(base_fp32)
        outtype = name.split("-", 1)[1]
        return {mode: LlamaCppRunner(convert_model(model, tokenizer, work / f"{mode}-{outtype}", script=convert,
                                                   outtype=outtype), threads=torch.get_num_threads(), eos=eos)
                for mode, model in (("rag", base_fp32), ("lloco", merged))}

    if name in GRAPH_ENGINES:
        import tempfile

        from bench.onnx_graph import GraphRunner, export_onnx

        engine, precision = GRAPH_ENGINES[name]
        merged = PeftModel.from_pretrained(copy.deepcopy(base_fp32), adapter).merge_and_unload().eval()
        runners = {}
        with tempfile.TemporaryDirectory() as folder:  # the engines hold the graphs in memory once loaded
            for mode, model in (("rag", base_fp32), ("lloco", merged)):
                path = export_onnx(model, Path(folder) / f"{mode}.onnx")
                runners[mode] = GraphRunner(model, path, engine=engine, precision=precision,
                                            threads=torch.get_num_threads())
        return runners
    if name == "int8":
        quantize = torch.ao.quantization.quantize_dynamic
        merged = PeftModel.from_pretrained(copy.deepcopy(base_fp32), adapter).merge_and_unload()
        return {"rag": quantize(copy.deepcopy(base_fp32), {torch.nn.Linear}, dtype=torch.qint8).eval(),
                "lloco": quantize(merged, {torch.nn.Linear}, dtype=torch.qint8).eval()}
    dtype = getattr(torch, name.split("-")[0])
    model = copy.deepcopy(base_fp32).to(dtype).eval()
    if name.endswith("-merged"):
        reader = PeftModel.from_pretrained(copy.deepcopy(model), adapter).merge_and_unload()
    else:
        reader = PeftModel.from_pretrained(copy.deepcopy(model), adapter, autocast_adapter_dtype=not name.endswith("-lora16"))
    return {"rag": model, "lloco": reader.eval()}


def available(module: str) -> bool:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        print(f"{module} is not installed: its candidates are left out")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--collection", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--path", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--decode", type=int, default=16, help="forced decode steps timed after the prefill")
    parser.add_argument("--answer-tokens", type=int, default=32)
    parser.add_argument("--candidates", default=",".join(CANDIDATES),
                        help="comma-separated, from " + ", ".join(CANDIDATES) + " (float32, the baseline, always runs)")
    parser.add_argument("--llama-cpp-convert", type=Path, help="llama.cpp's convert_hf_to_gguf.py (llamacpp-* candidates)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    import torch

    from app.config import Settings
    from app.eval.datasets import read_dataset
    from app.core.service import LlocoService

    service = LlocoService(Settings(home=args.home, dtype="float32", prefix_cache=False))
    decoder = service.decoder
    evalset = read_dataset(args.dataset, args.path, limit=args.limit)
    prompts: dict[str, list] = {"rag": [], "lloco": []}
    answerers = {mode: service.answerer(args.collection, mode) for mode in prompts}
    adapter = str(answerers["lloco"].adapter)
    for question in evalset.questions:
        for mode, answerer in answerers.items():
            prompts[mode].append(answerer.prepare(question.question, top_k=4).embeds)  # (1, n, d) float32
    base = decoder.base_model  # the float32 model, no adapter loaded yet
    pad = decoder.tokenizer.pad_token_id
    results: dict[str, dict[str, dict]] = {}
    answers: dict[tuple[str, str], list[list[int]]] = {}
    asked = {"float32", *args.candidates.split(",")}
    if asked - set(CANDIDATES):
        parser.error(f"unknown candidates: {', '.join(sorted(asked - set(CANDIDATES)))}")
    candidates = [name for name in CANDIDATES
                  if name in asked and (name not in GRAPH_ENGINES or available(GRAPH_ENGINES[name][0]))
                  and (not name.startswith("llamacpp-") or available("llama_cpp"))]
    import tempfile

    work = Path(tempfile.mkdtemp(prefix="lloco-cpu-inference-"))
    for name in candidates:
        models = candidate_models(base, adapter, name, tokenizer=decoder.tokenizer, convert=args.llama_cpp_convert,
                                  work=work)
        dtype = getattr(torch, name.split("-")[0]) if name.startswith(("float", "bfloat")) else torch.float32
        results[name] = {}
        for mode, model in models.items():
            prefill, decode, out = [], [], []
            with torch.inference_mode():
                for embeds in prompts[mode]:
                    e = embeds.to(dtype)
                    mask = torch.ones(e.shape[:2], dtype=torch.long)
                    model(inputs_embeds=e[:, :8])  # warm-up
                    started = time.perf_counter()
                    model(inputs_embeds=e, use_cache=True)
                    prefill.append(time.perf_counter() - started)
                    seconds = []
                    for steps in (1, args.decode + 1):  # the decode steps: the longer generation minus the one-token one
                        started = time.perf_counter()
                        model.generate(inputs_embeds=e, attention_mask=mask, max_new_tokens=steps,
                                       min_new_tokens=steps, do_sample=False, pad_token_id=pad)
                        seconds.append(time.perf_counter() - started)
                    decode.append(max(seconds[1] - seconds[0], 1e-6))
                    ids = model.generate(inputs_embeds=e, attention_mask=mask, max_new_tokens=args.answer_tokens,
                                         do_sample=False, pad_token_id=pad)
                    out.append(ids[0].tolist())
            answers[(name, mode)] = out
            tokens = [int(p.shape[1]) for p in prompts[mode]]
            results[name][mode] = {
                "prompt_tokens": statistics.median(tokens),
                "prefill_s": statistics.median(prefill),
                "prefill_tok_s": sum(tokens) / sum(prefill),
                "decode_tok_s": args.decode * len(decode) / sum(decode),
                "same_answer_as_float32": sum(a == b for a, b in zip(out, answers[("float32", mode)], strict=True)),
                "questions": len(out),
            }
        del models
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    print(f"{args.collection}: {args.limit} questions, {torch.get_num_threads()} threads, {service.settings.decoder}; "
          f"medians; ratios against float32")
    print("| candidate | mode | prompt tokens | prefill tok/s | x fp32 | decode tok/s | x fp32 | answers = fp32 |\n"
          "|---|---|---|---|---|---|---|---|")
    for name in candidates:
        for mode in ("rag", "lloco"):
            r, f = results[name][mode], results["float32"][mode]
            print(f"| {name} | {mode} | {r['prompt_tokens']:.0f} | {r['prefill_tok_s']:.0f} | "
                  f"{r['prefill_tok_s'] / f['prefill_tok_s']:.2f} | {r['decode_tok_s']:.1f} | "
                  f"{r['decode_tok_s'] / f['decode_tok_s']:.2f} | {r['same_answer_as_float32']} of {r['questions']} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
