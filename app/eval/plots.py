"""PNG plots of an evaluation run (matplotlib, Agg backend: no display needed).

quality.png (each metric by mode), prompt_tokens.png (mean prompt tokens by mode, context part hatched),
latency.png (time-to-first-token and total time distributions by mode), needle_heatmap.png
(needle runs: match rate by context length x depth, one panel per mode) and, with a second run,
vs.png (the headline metric by mode, both runs).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from app.eval.selective import Selective, selective

if TYPE_CHECKING:
    from app.eval.summary import Summary
    from app.eval.store import RunData

COLORS = {"lloco": "#1f77b4", "lloco-pure": "#9ecae1", "rag": "#ff7f0e", "rag+reader": "#fdae6b", "full": "#2ca02c"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)
    return path


def write_plots(summary: Summary, run: RunData, out: Path, *, vs: Summary | None = None) -> dict[str, Path]:
    """Every plot that applies to this run, written into ``out``; returns them by name."""
    plots = {"quality": quality_plot(summary, out / "quality.png"),
             "prompt_tokens": prompt_tokens_plot(summary, out / "prompt_tokens.png"),
             "latency": latency_plot(run, summary, out / "latency.png")}
    if run.info.dataset == "needle":
        plots["needle_heatmap"] = needle_heatmap(run, summary, out / "needle_heatmap.png")
    if vs is not None:
        plots["vs"] = vs_plot(summary, vs, out / "vs.png")
    figures = selective(run, summary.metric_names)
    if figures:
        plots["risk_coverage"] = risk_coverage_plot(figures, summary, out / "risk_coverage.png")
    return plots


def risk_coverage_plot(figures: list[Selective], summary: Summary, path: Path) -> Path:
    """Accuracy of the answered against coverage, answering the most confident first (one line per
    mode; the dotted line is the mode's accuracy over every question)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for s in figures:
        color = COLORS.get(s.mode)
        ax.plot([c for c, _ in s.curve], [a for _, a in s.curve], color=color,
                label=f"{s.mode} (AUROC {'-' if s.auroc is None else f'{s.auroc:.2f}'})")
        ax.axhline(s.accuracy, color=color, linestyle=":", linewidth=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("coverage (share answered, most confident first)")
    ax.set_ylabel(f"{figures[0].metric} of the answered")
    ax.set_title(f"{summary.run.dataset}: risk-coverage ({summary.run.name})")
    ax.legend(fontsize=8)
    return _save(fig, path)


def quality_plot(summary: Summary, path: Path) -> Path:
    """Grouped bars: each metric's mean, one bar per mode (n ok in the legend)."""
    plt = _pyplot()
    names, modes = summary.metric_names, summary.modes
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(names) + 2), 3.8))
    width = 0.8 / max(len(modes), 1)
    for i, m in enumerate(modes):
        xs = [j + (i - (len(modes) - 1) / 2) * width for j in range(len(names))]
        values = [m.metrics.get(k) or 0.0 for k in names]
        bars = ax.bar(xs, values, width, label=f"{m.mode} (n={m.n_ok})", color=COLORS.get(m.mode))
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("mean score")
    ax.set_title(f"{summary.run.dataset}: scores by mode ({summary.run.name})")
    ax.legend(fontsize=8)
    return _save(fig, path)


def prompt_tokens_plot(summary: Summary, path: Path) -> Path:
    """Mean prompt tokens per mode, with the part that stands for the chunks hatched."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 3.6))
    modes = summary.modes
    names = [m.mode for m in modes]
    bars = ax.bar(names, [m.prompt_tokens or 0.0 for m in modes], color=[COLORS.get(m.mode, "grey") for m in modes])
    ax.bar_label(bars, fmt="%.0f", fontsize=8)
    if any(m.context_tokens is not None for m in modes):
        ax.bar(names, [m.context_tokens or 0.0 for m in modes], fill=False, hatch="//", edgecolor="black",
               linewidth=0.5, label="context part")
        ax.legend(fontsize=8)
    ax.set_ylabel("mean prompt tokens")
    ax.set_title("prompt tokens by mode")
    return _save(fig, path)


def latency_plot(run: RunData, summary: Summary, path: Path) -> Path:
    """Box plots of time to first token and total time per question, by mode."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.6))
    modes = [m.mode for m in summary.modes]
    for ax, key, title in zip(axes, ("ttft_s", "total_s"), ("time to first token", "total time"), strict=True):
        data = [[getattr(r, key) for r in run.rows if r.mode == m and r.status == "ok" and getattr(r, key) is not None]
                for m in modes]
        shown = [(m, d) for m, d in zip(modes, data, strict=True) if d]
        if shown:
            ax.boxplot([d for _, d in shown], tick_labels=[m for m, _ in shown], showmeans=True)
        else:
            ax.text(0.5, 0.5, "no successful rows", ha="center", va="center", transform=ax.transAxes)
        ax.set_ylabel("seconds")
        ax.set_title(title)
    return _save(fig, path)


def needle_heatmap(run: RunData, summary: Summary, path: Path) -> Path:
    """Needle match rate by context length (rows) x needle depth (columns), one panel per mode."""
    plt = _pyplot()
    cells: dict[str, dict[tuple[int, float], list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in run.rows:
        if r.status == "ok" and "context_chars" in r.details and "depth" in r.details:
            cells[r.mode][(int(r.details["context_chars"]), float(r.details["depth"]))].append(r.score.get("match", 0.0))
    lengths = sorted({k[0] for c in cells.values() for k in c})
    depths = sorted({k[1] for c in cells.values() for k in c})
    modes = [m.mode for m in summary.modes]
    fig, axes = plt.subplots(1, len(modes), figsize=(4.2 * len(modes) + 1.2, 3.8), squeeze=False, layout="constrained")
    image = None
    for n_ax, (ax, mode) in enumerate(zip(axes[0], modes, strict=True)):
        grid = [[_cell_mean(cells[mode].get((n, d))) for d in depths] for n in lengths]
        image = ax.imshow(grid or [[float("nan")]], vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(len(depths)), [f"{d:.0%}" for d in depths])
        ax.set_yticks(range(len(lengths)), [f"{n:,}" for n in lengths] if n_ax == 0 else [])
        ax.set_xlabel("needle depth")
        if n_ax == 0:
            ax.set_ylabel("context length (chars)")
        ax.set_title(mode)
        for i, row in enumerate(grid):
            for j, v in enumerate(row):
                ax.text(j, i, "-" if v != v else f"{v:.2f}", ha="center", va="center", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=list(axes[0]), shrink=0.8, label="match rate")
    fig.suptitle("needle in a haystack")
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _cell_mean(values: list[float] | None) -> float:
    return sum(values) / len(values) if values else float("nan")


def vs_plot(summary: Summary, vs: Summary, path: Path) -> Path:
    """The headline metric by mode for this run and the compared one."""
    plt = _pyplot()
    modes = [m.mode for m in summary.modes if vs.mode(m.mode) is not None]
    key = summary.primary
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for i, (s, label) in enumerate(((summary, summary.run.name), (vs, vs.run.name))):
        values = [(s.mode(m).metrics.get(key) or 0.0) for m in modes]
        bars = ax.bar([j + (i - 0.5) * 0.4 for j in range(len(modes))], values, 0.4, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(modes)), modes)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(f"mean {key}")
    ax.set_title(f"{key}: {summary.run.name} vs {vs.run.name}")
    ax.legend(fontsize=8)
    return _save(fig, path)
