"""Per-channel PCA: keeps the variance asked for, reconstructs in batches, resizes."""

from __future__ import annotations

import numpy as np
import pytest

from emorec.data import pca
from emorec.errors import EmorecError


def low_rank_images(n=300, size=16, rank=4, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = rng.random((rank, size * size * 3))
    codes = rng.random((n, rank))
    x = codes @ basis
    x = (x - x.min()) / (x.max() - x.min()) * 255
    return x.reshape(n, size, size, 3).astype(np.uint8)


def test_pca_keeps_few_components_for_low_rank_data_and_reconstructs():
    images = low_rank_images()
    model = pca.fit(images, variance=0.95, max_components=50, fit_samples=200, seed=0)
    assert len(model.channels) == 3
    for ch in model.summary():
        assert 1 <= ch["components"] <= 5 and ch["explained_variance"] >= 0.95
    out, mse = pca.reconstruct(model, images, out_size=32, batch=64)
    assert out.shape == (300, 32, 32, 3) and out.dtype == np.uint8
    assert mse < 1e-3
    same, _ = pca.reconstruct(model, images, out_size=None, batch=7)
    assert np.abs(same.astype(int) - images.astype(int)).mean() < 3


def test_pca_refuses_too_few_components():
    noise = np.random.default_rng(0).integers(0, 256, (100, 16, 16, 1)).astype(np.uint8)
    with pytest.raises(EmorecError, match="raise pca.max_components"):
        pca.fit(noise, variance=0.95, max_components=5, fit_samples=100, seed=0)
