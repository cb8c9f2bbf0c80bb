"""Cross-dataset evaluation: a model trained on one dataset scored on another's test split
over the classes both share (e.g. FER2013's 7 -> AffectNet-8 without contempt), as is and
reframed: datasets crop faces differently (AffectNet's crops are looser than FER2013's),
so a centre crop of the other dataset's faces, chosen on its validation split, tells a
framing mismatch apart from what the model does not know."""

from __future__ import annotations

import numpy as np

from emorec.errors import EmorecError


def shared_classes(model_classes, data_classes) -> tuple[str, ...]:
    shared = tuple(c for c in model_classes if c in set(data_classes))
    if len(shared) < 2:
        raise EmorecError(f"the model's classes {list(model_classes)} and the data's "
                          f"{list(data_classes)} share fewer than two")
    return shared


def restrict(probs: np.ndarray, labels: np.ndarray, model_classes, data_classes):
    """Keep the images whose true class the model knows; predict among shared classes only.

    Returns (y_true, y_pred, shared) with ids indexing `shared`."""
    shared = shared_classes(model_classes, data_classes)
    data_to_shared = {data_classes.index(c): i for i, c in enumerate(shared)}
    keep = np.array([int(y) in data_to_shared for y in labels])
    columns = [list(model_classes).index(c) for c in shared]
    y_true = np.array([data_to_shared[int(y)] for y in labels[keep]], dtype=int)
    y_pred = probs[keep][:, columns].argmax(1)
    return y_true, y_pred, shared


def centre_crop(images: np.ndarray, fraction: float) -> np.ndarray:
    """The central `fraction` of each image (N, H, W[, C]), resized back to H x W."""
    import cv2

    if not 0 < fraction <= 1:
        raise EmorecError(f"a centre-crop fraction must be in (0, 1], got {fraction!r}")
    if fraction == 1:
        return images
    h, w = images.shape[1:3]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = np.stack([cv2.resize(np.ascontiguousarray(im[top:top + ch, left:left + cw]), (w, h),
                               interpolation=cv2.INTER_AREA) for im in images])
    return out.reshape(images.shape)


def choose_framing(score, fractions) -> tuple[float, dict[float, float]]:
    """The centre-crop fraction with the best `score(fraction)` (a validation figure; ties go
    to the looser crop) and every candidate's score."""
    fractions = sorted({float(f) for f in fractions}, reverse=True)
    if not fractions:
        raise EmorecError("framing: give at least one centre-crop fraction (1.0: as is)")
    scores = {f: float(score(f)) for f in fractions}
    return max(fractions, key=lambda f: (scores[f], f)), scores
