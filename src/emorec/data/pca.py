"""Per-channel PCA reconstruction of face images (paper §IV.B).

For each colour channel, PCA is fitted on (a seeded sample of) the training images, the
components that explain at least `variance` of the variance are kept, and every image is
projected and reconstructed from them, then resized to the model's input size. Fitting on
a sample and transforming in batches keeps memory bounded for full AffectNet (~290k).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from emorec.data.adapters.imaging import fit_size
from emorec.errors import EmorecError


@dataclass
class ChannelPCA:
    mean: np.ndarray  # (D,)
    components: np.ndarray  # (k, D)
    explained: float  # fraction of the sample's variance the k components explain


@dataclass
class PCAModel:
    size: int  # input image side
    channels: list[ChannelPCA] = field(default_factory=list)

    def summary(self) -> list[dict]:
        return [{"channel": i, "components": int(c.components.shape[0]),
                 "explained_variance": round(float(c.explained), 4)}
                for i, c in enumerate(self.channels)]


def fit(images: np.ndarray, variance: float, max_components: int, fit_samples: int,
        seed: int) -> PCAModel:
    """Fit one PCA per channel on up to `fit_samples` training images."""
    from sklearn.decomposition import PCA

    if not 0 < variance <= 1:
        raise EmorecError(f"params.yaml: pca.variance must be in (0, 1], got {variance}")
    n, h, w, c = images.shape
    if h != w:
        raise EmorecError(f"PCA expects square images, got {h}x{w}")
    rng = np.random.default_rng(seed)
    sample = images[rng.choice(n, size=min(n, fit_samples), replace=False)]
    k_max = min(max_components, len(sample) - 1, h * w)
    model = PCAModel(size=h)
    for ch in range(c):
        x = sample[..., ch].reshape(len(sample), -1).astype(np.float32) / 255.0
        pca = PCA(n_components=k_max, svd_solver="randomized", random_state=seed).fit(x)
        cumulative = np.cumsum(pca.explained_variance_ratio_)
        k = int(np.searchsorted(cumulative, variance) + 1)
        if k > k_max:
            raise EmorecError(
                f"channel {ch}: {k_max} components explain only {cumulative[-1]:.3f} of the "
                f"variance, less than pca.variance={variance}; raise pca.max_components")
        model.channels.append(ChannelPCA(pca.mean_.astype(np.float32),
                                         pca.components_[:k].astype(np.float32),
                                         float(cumulative[k - 1])))
    return model


def reconstruct(model: PCAModel, images: np.ndarray, out_size: int | None,
                batch: int = 1024) -> tuple[np.ndarray, float]:
    """Project and reconstruct every image in batches; return (uint8 images at out_size,
    mean squared reconstruction error in [0, 1] pixel units before resizing)."""
    n, h, w, c = images.shape
    if h != model.size or c != len(model.channels):
        raise EmorecError(f"PCA was fitted on {model.size}px {len(model.channels)}-channel images, "
                          f"got {h}px {c}-channel")
    side = out_size or h
    out = np.empty((n, side, side, c), np.uint8)
    sq_err = 0.0
    for start in range(0, n, batch):
        chunk = images[start:start + batch]
        rebuilt = np.empty(chunk.shape, np.float32)
        for ch, comp in enumerate(model.channels):
            x = chunk[..., ch].reshape(len(chunk), -1).astype(np.float32) / 255.0
            codes = (x - comp.mean) @ comp.components.T
            y = codes @ comp.components + comp.mean
            sq_err += float(((y - x) ** 2).sum())
            rebuilt[..., ch] = y.reshape(len(chunk), h, w)
        rebuilt = np.clip(np.rint(rebuilt * 255.0), 0, 255).astype(np.uint8)
        for i, img in enumerate(rebuilt):
            out[start + i] = fit_size(img, side)
    return out, sq_err / max(images.size, 1)


def sample_grid(before: np.ndarray, after: np.ndarray, path, title: str, n: int = 8) -> None:
    """Two rows of faces: originals above, PCA reconstructions below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emorec.files import atomic_path

    n = min(n, len(before))
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.6), squeeze=False)
    for i in range(n):
        for row, imgs, label in ((0, before, "original"), (1, after, "PCA")):
            img = imgs[i]
            axes[row][i].imshow(img[..., 0] if img.shape[-1] == 1 else img,
                                cmap="gray" if img.shape[-1] == 1 else None)
            axes[row][i].set_xticks([])
            axes[row][i].set_yticks([])
            if i == 0:
                axes[row][i].set_ylabel(label)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
