"""Boxes, labels and FPS drawn on frames; emotion timelines per track."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emorec import files
from emorec.inference.tracker import Track

# ----------------------------------------------------------------------------- drawing
COLOURS = [(66, 135, 245), (245, 66, 93), (66, 245, 138), (245, 200, 66), (200, 66, 245), (66, 236, 245)]


def draw(frame: np.ndarray, tracks: list[Track], classes: tuple[str, ...], fps: float) -> np.ndarray:
    for t in tracks:
        x1, y1, x2, y2 = (int(round(v)) for v in t.box)
        colour = COLOURS[t.track_id % len(COLOURS)]
        k = int(np.argmax(t.probs))
        label = f"#{t.track_id} {classes[k]} {t.probs[k]:.2f}"
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 2)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(frame, (x1, max(0, y1 - th - 6)), (x1 + tw + 4, y1), colour, -1)
        cv2.putText(frame, label, (x1 + 2, max(th, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    cv2.putText(frame, f"{fps:.1f} FPS", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2, cv2.LINE_AA)
    return frame


def timeline_figure(tracks: list[Track], classes: tuple[str, ...], fps: float, path: Path, min_hits: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in tracks if t.hits >= min_hits]
    fig, axes = plt.subplots(max(len(shown), 1), 1, figsize=(9, 1.9 * max(len(shown), 1) + 0.6), squeeze=False)
    for ax, t in zip(axes[:, 0], shown):
        frames = np.array([f for f, _ in t.timeline])
        probs = np.array([p for _, p in t.timeline])
        ax.stackplot(frames / fps, probs.T, labels=classes)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {t.track_id}")
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no face tracked", ha="center", va="center")
        axes[0, 0].axis("off")
    else:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle("smoothed emotion probabilities per track", fontsize=10)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


