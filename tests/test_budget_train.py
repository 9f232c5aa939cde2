"""The budgeted GPU training script on the tiny random Llama: packing, a whole run within its budget,
refusals, the packed reader prompts, and a run with the app's and the UI's packages made unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench.pack_budget_data import pack
from model.budget_data import MAX_FILE_BYTES, MAX_FILES, OutputTooLargeError, check_outputs, read_pack, reader_items
from model.budget_train import BudgetTooSmallError, main, train
from model.compressor import load_compressor
from model.corpus import is_heldout
from tests.fakes import CORPUS
from tests.test_train_adapter import _write_squad

REPO = Path(__file__).resolve().parent.parent
WORDS = CORPUS.split()
KAPPA, CHUNK, EXPAND = 4, 32, 16
# what the device machine lacks (torch, transformers, peft, safetensors and numpy are all it has)
BLOCKED = ("faiss", "llama_index", "sentence_transformers", "sqlalchemy", "pydantic", "typer", "rich", "streamlit",
           "matplotlib", "app", "indexing")


def ticking_clock(dt: float = 0.05):
    """A clock whose every reading is ``dt`` after the last: the run's plan (steps per phase, when to
    save, when to stop) depends on how often it reads the clock, never on how busy this machine is."""
    ticks = iter(range(10**9))
    return lambda: dt * next(ticks)


def write_fake_eval_data(root: Path) -> Path:
    """Essays long enough for 128-256 + 128-token pairs (some held out), SQuAD and NarrativeQA files."""
    folder = root / "needle" / "PaulGrahamEssays"
    folder.mkdir(parents=True)
    for i in range(40):
        (folder / f"essay{i:02d}.txt").write_text(" ".join(WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(400)))
    _write_squad(root)
    return root


def pack_tiny(root: Path, out: Path, tokenizer, *, examples: int = 40) -> dict:
    """The tiny data folder (also the CUDA smoke run's, see docs/models/gpu-training.md)."""
    return pack(out, data_root=root, tokenizer=tokenizer, sources=("essays",), max_tokens=20_000, examples=examples,
                heldout_pairs=8, kappa=KAPPA, chunk_tokens=CHUNK, expand_tokens=EXPAND, expand_share=1.0)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = write_fake_eval_data(tmp_path_factory.mktemp("eval-data"))
    assert any(is_heldout(f"essays/essay{i:02d}") for i in range(40))
    return root


@pytest.fixture(scope="module")
def packed(data_root, tiny_decoder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("packed") / "data"
    meta = pack_tiny(data_root, out, tiny_decoder.tokenizer)
    assert meta["corpus"]["tokens"] == 20_000 < meta["corpus"]["train_tokens"]  # capped
    assert meta["heldout"]["pairs"] == 8 and meta["reader"]["examples"] >= 30  # as many as the files have
    assert sorted(p.name for p in out.iterdir()) == ["pack.json", "tokens.npz"]
    return out


def test_the_packed_folder_reads_back_as_token_ids(packed, tiny_decoder):
    data = read_pack(packed)
    assert data.kappa == KAPPA and sum(len(d.ids) for d in data.docs) == 20_000
    assert all(not is_heldout(d.doc_id) for d in data.docs)
    assert all(128 <= len(p.a) <= 256 and len(p.b) == 128 for p in data.heldout)
    assert all(len(w) <= CHUNK for w in data.windows)
    for e in data.examples:
        assert 1 <= len(e.windows) <= 4 and len(e.sentences) == len(e.windows)
        assert sum(map(len, e.sentences)) <= EXPAND
    assert any(s for e in data.examples for s in e.sentences), "no example got an expansion sentence"
    assert tiny_decoder.tokenizer.decode(data.docs[0].ids.tolist()).split()[0] in WORDS


def test_packed_reader_examples_are_the_prompts_compress_examples_builds(data_root, tiny_decoder, tmp_path):
    from app.training.data import compress_examples, reader_raw_examples

    pack_tiny(data_root, tmp_path / "data", tiny_decoder.tokenizer, examples=12)
    data = read_pack(tmp_path / "data")
    compressor = load_compressor("untrained", tiny_decoder, kappa=KAPPA)
    with torch.no_grad():
        ours = reader_items(data, compressor.compress(data.windows), tiny_decoder.embed_ids)
        theirs = compress_examples(reader_raw_examples(data_root, n=12, seed=0), tiny_decoder, compressor,
                                   chunk_tokens=CHUNK, expand_tokens=EXPAND, expand_share=1.0)
    assert [(i.question, i.answer, i.instruction, i.source) for i in ours] == \
        [(i.question, i.answer, i.instruction, i.source) for i in theirs]
    assert any(len(i.contexts) > len(e.windows) for i, e in zip(ours, data.examples, strict=True))  # expanded
    for a, b in zip(ours, theirs, strict=True):
        assert [c.shape for c in a.contexts] == [c.shape for c in b.contexts]
        for x, y in zip(a.contexts, b.contexts, strict=True):
            torch.testing.assert_close(x.float(), y.float())


def test_a_run_trains_both_models_and_stops_within_its_budget(packed, tiny_folder, tiny_decoder, tmp_path, capsys):
    out, budget = tmp_path / "run", 30.0  # seconds of the ticking clock
    code = main(["train", "--decoder", str(tiny_folder), "--data", str(packed), "--out", str(out), "--max-seconds",
                 str(budget), "--device", "cpu", "--scratch", str(tmp_path / "scratch"), "--save-every-s", "4"],
                clock=ticking_clock())
    stdout, stderr = capsys.readouterr()
    assert code == 0, stderr
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == ["compressor/compressor.json", "compressor/lora/adapter_config.json",
                     "compressor/lora/adapter_model.safetensors", "compressor/summary_embeddings.safetensors",
                     "log.jsonl", "reader/adapter_config.json", "reader/adapter_model.safetensors",
                     "reader/lloco_adapter.json"]
    assert len(files) <= MAX_FILES and all((out / f).stat().st_size <= MAX_FILE_BYTES for f in files)
    compressor = load_compressor(str(out / "compressor"), tiny_decoder, kappa=KAPPA)
    assert compressor.trained and compressor.compress([[5, 6, 7]])[0].shape == (KAPPA, tiny_decoder.hidden_size)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    summary = log[-1]
    assert summary["phase"] == "summary" and summary["elapsed"] <= budget
    for phase, least in (("compressor", 20), ("reader", 10)):
        steps = [r["step"] for r in log if r["phase"] == phase]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) >= least, phase
        assert summary[phase]["steps"] == len(steps) <= summary[phase]["planned_steps"]
        assert all({"loss", "lr", "elapsed"} <= set(r) for r in log if r["phase"] == phase)
    assert max(r["elapsed"] for r in log if r["phase"] == "compressor") <= 0.6 * budget
    meta = json.loads((out / "reader" / "lloco_adapter.json").read_text())
    assert meta["examples"] == len(read_pack(packed).examples) and meta["trained_steps"] >= 10
    assert meta["compressor"] == compressor.ident  # the reader reads the vectors of the compressor trained before it
    assert meta["expand_tokens"] == EXPAND and meta["training"]["steps"] == summary["reader"]["planned_steps"]
    if summary["heldout_eval"] is not None:
        assert summary["heldout_eval"]["pairs"] >= 1 and "gap_closed" in summary["heldout_eval"]
    assert json.loads(stdout.strip().splitlines()[-1])["files"]["log.jsonl"] > 0
    # the resume files stay in the scratch folder, which does not come back
    assert (tmp_path / "scratch" / "compressor" / "trainer_state.pt").is_file()
    assert (tmp_path / "scratch" / "reader" / "examples.pt").is_file()


def test_too_small_budgets_and_bad_folders_are_refused_clearly(packed, tiny_folder, tmp_path, capsys):
    base = ["train", "--decoder", str(tiny_folder), "--data", str(packed), "--out", str(tmp_path / "o"), "--device", "cpu"]
    cases = {("--minutes", "1"): "too small to help: give at least 2 minutes",
             ("--minutes", "3", "--compressor-share", "1.0"): "--compressor-share must be between",
             ("--minutes", "3", "--data", str(tmp_path / "nope")): "is not a folder",
             ("--minutes", "3", "--data", str(tmp_path)): "not a packed data folder: pack.json, tokens.npz missing",
             ("--minutes", "3", "--decoder", str(tmp_path)): "not a Hugging Face model folder"}
    for extra, message in cases.items():
        assert main(base + list(extra)) == 2
        stderr = capsys.readouterr().err
        assert message in stderr and stderr.count("\n") == 1, stderr
    assert not (tmp_path / "o").exists()

    slow_clock = ticking_clock(2.0)  # 2 s per step

    too_few = r"compressor steps fit .* at least 20 are needed: give about \d+ minutes"
    with pytest.raises(BudgetTooSmallError, match=too_few):
        train(decoder=tiny_folder, data=packed, out=tmp_path / "slow", seconds=30, min_seconds=0, device="cpu",
              scratch=tmp_path / "scratch", clock=slow_clock)


def test_an_output_that_would_not_come_back_fails_loudly(tmp_path):
    for i in range(MAX_FILES):
        (tmp_path / f"f{i}").write_text("x")
    assert len(check_outputs(tmp_path)) == MAX_FILES
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "one-more").write_text("x")
    with pytest.raises(OutputTooLargeError, match="9 files, more than the 8"):
        check_outputs(tmp_path)
    (tmp_path / "sub" / "one-more").unlink()
    with (tmp_path / "f0").open("wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: no disk used
    with pytest.raises(OutputTooLargeError, match=r"over 16 MiB would not come back: f0 \(16.0 MiB\)"):
        check_outputs(tmp_path)


def test_the_training_path_imports_nothing_the_gpu_machine_lacks(packed, tiny_folder, tmp_path):
    wrapper = f"""
import importlib.abc, sys
BLOCKED = {BLOCKED!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"no module named {{name!r}} on the GPU machine", name=name)
        return None
sys.meta_path.insert(0, Block())
for name in BLOCKED:  # as if not installed: imports fail, importlib.util.find_spec probes get None
    sys.modules[name] = None
try:
    import pydantic
except ImportError:
    pass
else:
    sys.exit("the blocker does not block")
import numpy, peft, safetensors, torch, transformers  # what the machine has, imported before the clock starts
from model.budget_train import main
ticks = iter(range(10**9))  # a ticking clock (see ticking_clock): the plan does not depend on this machine's load
try:
    code = main(sys.argv[1:], clock=lambda: 0.05 * next(ticks))
finally:
    print("LOADED:", sorted(n for n, m in sys.modules.items() if m is not None and n.partition(".")[0] in BLOCKED))
sys.exit(code)
"""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", wrapper, "train", "--decoder", str(tiny_folder), "--data", str(packed),
                           "--out", str(out), "--max-seconds", "30", "--device", "auto"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "LOADED: []" in proc.stdout
    phases = {json.loads(line)["phase"] for line in (out / "log.jsonl").read_text().splitlines()}
    assert phases == {"compressor", "reader", "summary"}
    assert (out / "reader" / "adapter_config.json").is_file() and (out / "compressor" / "compressor.json").is_file()
