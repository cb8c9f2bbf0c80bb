"""How tightly a dataset's stored faces are cropped differs between datasets (AffectNet's
crops are looser than FER2013's). `combine.framing` centre-crops one source's faces before
they are resized into the combined dataset, so that one model could see one framing."""

from __future__ import annotations

import numpy as np

from emorec.errors import EmorecError


def framing_from_params(cfg: dict) -> dict[str, float]:
    """combine.framing checked against combine.sources: {source: fraction in (0, 1]}."""
    framing = cfg.get("framing") or {}
    if not isinstance(framing, dict):
        raise EmorecError(f"params.yaml: combine.framing must map a source to a centre-crop fraction, got {framing!r}")
    for source, fraction in framing.items():
        if source not in cfg["sources"]:
            raise EmorecError(f"params.yaml: combine.framing.{source}: {source!r} is not one of "
                              f"combine.sources {list(cfg['sources'])}")
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise EmorecError(f"params.yaml: combine.framing.{source} must be a fraction in (0, 1] "
                              f"(1: as stored), got {fraction!r}")
    return {str(s): float(f) for s, f in framing.items()}


def crop_centre(images: np.ndarray, fraction: float) -> np.ndarray:
    """The central `fraction` of each face (N, H, W[, C]) at its own resolution; resizing
    comes after, once, so a 96-px AffectNet face cropped to 62 px is resampled only to 48."""
    if fraction == 1:
        return images
    h, w = images.shape[1:3]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return np.ascontiguousarray(images[:, top:top + ch, left:left + cw])
