"""Files of a training run (compressor or adapter), all in one output folder:

- the latest checkpoint, loadable as is by :func:`model.compressor.load_compressor`:
  ``compressor.json`` + ``summary_embeddings.safetensors`` + ``lora/`` (peft ``save_pretrained``);
- ``trainer_state.pt``: optimizer, step, tokens seen, elapsed time, RNG states and the run's config,
  for ``--resume`` (the learning-rate schedule is rebuilt from the config, see :func:`schedule`);
  written last, so a checkpoint is complete when it exists;
- ``log.jsonl``: one line per optimizer step (step, lm, recon, total, lr, tokens_seen, elapsed_s, ...);
- ``loss.png``: the loss curves, redrawn at every checkpoint (where matplotlib is installed).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from model.errors import InvalidInputError

if TYPE_CHECKING:
    import torch

STATE_FILE = "trainer_state.pt"
LOG_FILE = "log.jsonl"
PLOT_FILE = "loss.png"
LORA_DIR = "lora"
_STAGING = ".checkpoint-staging"


def has_checkpoint(out: Path) -> bool:
    return (out / STATE_FILE).is_file()


def staging_dir(out: Path) -> Path:
    """An empty folder in ``out`` to write the next checkpoint into, before :func:`publish`."""
    folder = out / _STAGING
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def publish(out: Path, staged: Path) -> None:
    """Move a complete staged checkpoint into ``out``, the state file (the completion mark) last."""
    (out / STATE_FILE).unlink(missing_ok=True)
    names = sorted(p.name for p in staged.iterdir() if p.name != STATE_FILE) + [STATE_FILE]
    for name in names:
        target, source = out / name, staged / name
        if target.is_dir():
            shutil.rmtree(target)
        if source.exists():
            os.replace(source, target)
    shutil.rmtree(staged, ignore_errors=True)


def refuse_bad_settings(checks: dict[str, bool], what: str) -> None:
    """Raise one precise error naming every setting whose check failed."""
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise InvalidInputError(f"invalid {what} setting(s): {', '.join(bad)}")


def option(default: Any, help: str) -> Any:  # noqa: A002 - the word the CLI and Settings use
    """A training config field with its help text, as Settings' fields carry theirs (the CLI's options
    take their defaults and help from here: :func:`option_help`)."""
    return field(default=default, metadata={"help": help})


def option_help(cls: type, name: str, *, default: bool = True) -> str:
    """A config field's help text, with its default (``default=False``: where the CLI option itself
    has that default, and shows it)."""
    f = next(f for f in fields(cls) if f.name == name)
    if not default:
        return f.metadata["help"]
    value = ",".join(f.default) if isinstance(f.default, tuple) else f.default
    return f"{f.metadata['help']} (default {value})"


def config_from_dict(cls: type, data: dict[str, Any]) -> Any:
    """A frozen config dataclass from a checkpoint's JSON dict: unknown keys dropped, lists back to tuples."""
    known = {f.name for f in fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})


def run_steps(trainer: Any, end: int, on_step: Callable[[dict[str, Any]], None] | None) -> None:
    """The loop both trainers share: step to ``end``, report each step, checkpoint every
    ``config.save_every`` steps and at ``config.steps``."""
    while trainer.step < end:
        record = trainer.train_step()
        if on_step:
            on_step(record)
        if trainer.step % trainer.config.save_every == 0 or trainer.step == trainer.config.steps:
            trainer.save()


def lr_factor(config: Any) -> Callable[[int], float]:
    """Linear warm-up over warmup_steps, then cosine decay to 10 % at config.steps (any config with those two)."""
    warmup = min(config.warmup_steps, max(0, config.steps // 10))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, config.steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


def schedule(optimizer: torch.optim.Optimizer, config: Any, *, step: int = 0) -> torch.optim.lr_scheduler.LambdaLR:
    """The run's learning-rate schedule (:func:`lr_factor` of ``config``), positioned at ``step``.

    A resume rebuilds it from the run's config instead of loading it, so a resume that extends
    ``steps`` gets the stretched schedule (the optimizer's groups keep each "initial_lr")."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config), last_epoch=step - 1)


def save_state(trainer: Any, staged: Path) -> None:
    """A trainer's ``STATE_FILE``: step, counters, optimizer, RNG and config (not the schedule: see
    :func:`schedule`)."""
    import torch

    torch.save({"step": trainer.step, "tokens_seen": trainer.tokens_seen, "elapsed_s": trainer.elapsed,
                "optimizer": trainer.optimizer.state_dict(), "rng": rng_state(), "config": asdict(trainer.config)},
               staged / STATE_FILE)


def restore_state(trainer: Any) -> None:
    """Put a trainer (weights already loaded) back at its checkpoint: optimizer, counters, schedule
    and RNG; drop log lines past the checkpoint."""
    state = read_state(trainer.out)
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.step, trainer.tokens_seen, trainer.elapsed = state["step"], state["tokens_seen"], state["elapsed_s"]
    trainer.scheduler = schedule(trainer.optimizer, trainer.config, step=trainer.step)
    set_rng_state(state["rng"])
    truncate_log(trainer.out, trainer.step)


def read_state(out: Path) -> dict[str, Any]:
    import torch

    return torch.load(out / STATE_FILE, map_location="cpu", weights_only=True)


def rng_state() -> dict[str, Any]:
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------------------------- log

def append_log(out: Path, record: dict[str, Any]) -> None:
    with (out / LOG_FILE).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def read_log(out: Path) -> list[dict[str, Any]]:
    path = out / LOG_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def truncate_log(out: Path, step: int) -> None:
    """Drop log lines past ``step`` (steps a crashed run made after its last checkpoint)."""
    keep = [r for r in read_log(out) if r["step"] <= step]
    (out / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in keep), encoding="utf-8")


def plot_losses(out: Path, *, smooth: int = 20, keys: tuple[str, ...] = ("total", "lm", "recon"),
                what: str = "compressor training") -> Path | None:
    """Draw the losses ``keys`` per step (raw, faint, and a running mean) into ``loss.png``; nothing
    where matplotlib is not installed (a bare GPU machine: torch, transformers, peft, safetensors)."""
    records = read_log(out)
    if not records:
        return None
    try:
        import matplotlib
    except ImportError:
        return None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, color in zip(keys, ("black", "tab:blue", "tab:orange", "tab:green"), strict=False):
        values = [r[key] for r in records]
        window = max(1, min(smooth, len(values) // 5))
        mean = [sum(values[max(0, i - window + 1):i + 1]) / len(values[max(0, i - window + 1):i + 1])
                for i in range(len(values))]
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(steps, mean, color=color, label=f"{key} (mean of {window})")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(f"{what}: {records[-1]['tokens_seen']:,} tokens, {records[-1]['elapsed_s']:.0f} s")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / PLOT_FILE, dpi=110)
    plt.close(fig)
    return out / PLOT_FILE
