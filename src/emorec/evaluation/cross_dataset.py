"""Cross-dataset evaluation: a model trained on one dataset scored on another's test split
over the classes both share (e.g. FER2013's 7 -> AffectNet-8 without contempt)."""

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
