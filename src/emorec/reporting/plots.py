"""Figures people look at: class distributions (paper Figs. 2-6) and training curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec.files import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def class_distribution(groups: dict[str, dict[str, int]], path: Path, title: str) -> None:
    """Grouped bars: one group per class, one bar per named count set (split or stage)."""
    plt = _plt()
    names = list(groups)
    classes = list(next(iter(groups.values())))
    x = np.arange(len(classes))
    width = 0.8 / max(len(names), 1)
    fig, ax = plt.subplots(figsize=(max(7, len(classes) * 1.1), 4.2))
    for i, name in enumerate(names):
        values = [groups[name].get(c, 0) for c in classes]
        bars = ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, classes)
    ax.set_ylabel("images")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def training_curves(history: dict[str, list[float]], path: Path, title: str) -> None:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    epochs = np.arange(1, len(history.get("loss", [])) + 1)
    for ax, key in zip(axes, ("loss", "accuracy")):
        if key in history:
            ax.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def message_figure(path: Path, message: str) -> None:
    """A figure that only says why there is nothing to plot (e.g. a missing dataset)."""
    import textwrap

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(message, 70)), ha="center", va="center", fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
