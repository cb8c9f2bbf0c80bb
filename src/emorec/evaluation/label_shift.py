"""Label shift between datasets: the same faces, other class shares. The AffectNet subset
has 3 % happy faces, FER2013 25 %; a FER2013 model carries FER2013's shares as a prior.
Moving its posteriors to another dataset's class mix, measured on that dataset's validation
split (Saerens et al. 2002), tells how much of a cross-dataset gap is class mix rather than
faces the model misreads."""

from __future__ import annotations

import numpy as np

from emorec.errors import EmorecError


def class_mix(labels: np.ndarray, data_classes, model_classes) -> np.ndarray:
    """Each model class's share of the `labels` whose class the model knows (0 for a model
    class the data lacks): a class prior in the model's column order."""
    names = [data_classes[int(y)] for y in labels]
    known = [n for n in names if n in set(model_classes)]
    if not known:
        raise EmorecError("class mix: none of these labels is a class the model knows")
    return np.array([known.count(c) / len(known) for c in model_classes], dtype=np.float64)


def shift_prior(probs: np.ndarray, trained: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Posteriors under another class prior: p(y|x) x target(y) / trained(y), renormalised.
    `trained` is the class mix the model learned from; a class it never saw keeps weight 0."""
    trained, target = np.asarray(trained, np.float64), np.asarray(target, np.float64)
    if trained.shape != target.shape or trained.shape != probs.shape[1:]:
        raise EmorecError(f"class priors of {trained.shape[0]} and {target.shape[0]} classes do not fit "
                          f"probabilities of {probs.shape[1]}")
    ratio = np.divide(target, trained, out=np.zeros_like(target), where=trained > 0)
    shifted = probs * ratio
    total = shifted.sum(axis=1, keepdims=True)
    return np.divide(shifted, total, out=np.full_like(shifted, 1 / shifted.shape[1]), where=total > 0)
