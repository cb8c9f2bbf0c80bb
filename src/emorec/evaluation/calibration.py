"""Confidence that means something: expected calibration error, temperature scaling
fitted on validation (Guo et al. 2017), reliability diagrams, and test-time views.

The temperature divides the log-probabilities before a softmax. It is fitted on the
validation split only, travels with the model (`preprocessing.json`: `temperature`), and
is applied by `emorec.inference.classifier.calibrate` everywhere a score is shown."""

from __future__ import annotations

from pathlib import Path

import numpy as np

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)      # what emorec.inference.classifier.read_spec accepts


def scaled(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Temperature scaling of softmax outputs: softmax(log p / T) (T > 1 softens). The one
    implementation: inference applies it as `emorec.inference.classifier.calibrate`."""
    if temperature == 1.0 or not len(probabilities):
        return probabilities
    logits = np.log(np.clip(probabilities, 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def nll(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.clip(probabilities[np.arange(len(labels)), labels], 1e-12, 1.0)
    return float(-np.log(p).mean())


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Sum over equal-width confidence bins of |accuracy - mean confidence| x bin share."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - confidence[members].mean())
    return float(ece)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The T minimising validation NLL: a coarse log-spaced grid, then golden-section search
    around its best point (NLL is convex in 1/T)."""
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    grid = np.linspace(lo, hi, 61)
    losses = [nll(scaled(probabilities, np.exp(g)), labels) for g in grid]
    i = int(np.argmin(losses))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    ratio = (np.sqrt(5) - 1) / 2
    for _ in range(40):
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if nll(scaled(probabilities, np.exp(c)), labels) < nll(scaled(probabilities, np.exp(d)), labels):
            b = d
        else:
            a = c
    return float(np.exp((a + b) / 2))


def reliability(probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per confidence bin: count, mean confidence, accuracy (the diagram's data)."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        members = which == b
        out.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": int(members.sum()),
                    "confidence": float(confidence[members].mean()) if members.any() else None,
                    "accuracy": float(correct[members].mean()) if members.any() else None})
    return out


SPARSE_BIN_SHARE = 0.01


def sparse_bins(bins: list[dict], share: float = SPARSE_BIN_SHARE) -> list[bool]:
    """Which non-empty bins hold under `share` of the faces. A bin of one face draws a bar at
    0 or 1 that reads as gross miscalibration while it weighs next to nothing in the ECE, so
    the diagram draws such bars pale and names their face count."""
    total = sum(b["count"] for b in bins)
    return [0 < b["count"] < share * total for b in bins]


def plot_reliability(before: list[dict], after: list[dict], path: Path, title: str,
                     ece_before: float, ece_after: float, temperature: float) -> None:
    """Two panels: accuracy per confidence bin against the diagonal, before and after scaling;
    bins with under 1 % of the faces drawn pale, with their counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emorec.files import atomic_path

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.4), sharey=True)
    for ax, bins, name, ece in ((axes[0], before, "raw softmax", ece_before),
                                (axes[1], after, f"temperature {temperature:.2f}", ece_after)):
        centers = [(b["low"] + b["high"]) / 2 for b in bins]
        width = bins[0]["high"] - bins[0]["low"]
        acc = [b["accuracy"] or 0.0 for b in bins]
        sparse = sparse_bins(bins)
        solid = [i for i, s in enumerate(sparse) if not s]
        pale = [i for i, s in enumerate(sparse) if s]
        ax.bar([centers[i] for i in solid], [acc[i] for i in solid], width=width * 0.95, color="#4C72B0",
               edgecolor="white", label="accuracy")
        if pale:
            ax.bar([centers[i] for i in pale], [acc[i] for i in pale], width=width * 0.95, color="#4C72B0",
                   alpha=0.25, edgecolor="white", label=f"accuracy, bin with < {SPARSE_BIN_SHARE:.0%} of faces")
            for i in pale:
                ax.annotate(f"n={bins[i]['count']}", (centers[i], min(acc[i], 0.9) + 0.02), ha="center",
                            fontsize=7, rotation=90, va="bottom", color="#333333")
        conf = [(c, b["confidence"]) for c, b in zip(centers, bins) if b["confidence"] is not None]
        ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
        ax.plot([c for c, _ in conf], [v for _, v in conf], "o", color="#DD8452", ms=3, label="mean confidence")
        ax.set_xlim(0, 1), ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (top probability)")
        ax.set_title(f"{name}: ECE {ece:.3f}")
    axes[0].set_ylabel("accuracy in bin")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def views(images: np.ndarray, kind: str | None) -> list[np.ndarray]:
    """Test-time views of uint8 faces (N,H,W,C): None -> [as is]; 'flip' -> + mirror;
    'ten' -> as is and shifted 2 px to the four corners, each also mirrored (the
    pad-and-crop counterpart of ten-crop at the model's own input size)."""
    if kind is None:
        return [images]
    if kind not in ("flip", "ten"):
        from emorec.errors import EmorecError

        raise EmorecError(f"params.yaml: evaluate.tta must be null, 'flip' or 'ten', got {kind!r}")
    base = [images]
    if kind == "ten":
        padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="edge")
        h, w = images.shape[1:3]
        base += [padded[:, y:y + h, x:x + w] for y, x in ((0, 0), (0, 4), (4, 0), (4, 4))]
    return base + [v[:, :, ::-1] for v in base]


def shrunk(images: np.ndarray, side: int) -> np.ndarray:
    """Faces as a camera sees them far away: down to `side` px (area) and back up (linear)."""
    import cv2

    h, w = images.shape[1:3]
    out = np.empty_like(images)
    for i, img in enumerate(images):
        small = cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR).reshape(img.shape)
    return out
