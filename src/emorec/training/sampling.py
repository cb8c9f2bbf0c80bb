"""Which training faces a run sees, and how much each one counts.

`source_weights` answers a defect of combining datasets: each source arrives with its own
class mix (the shared AffectNet subset holds 3 % happy and 7 % neutral faces, FER2013 26 %
and 18 %), and a model that can tell the sources apart by their look learns each one's mix
as a prior. A face that looks like the AffectNet photos is then rarely called happy or
neutral, whatever its expression. Weighting every face by p_union(class) / p_source(class)
gives every source the union's class mix, so the look of a face says nothing about its
class. The weights are scaled to average 1, so the loss keeps its scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec.errors import EmorecError

SOURCE_PRIORS = (None, "shared")


def subsample(labels: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded, class-stratified subsample of at most `limit` items."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = max(1, int(round(limit * len(idx) / len(labels))))
        keep.append(rng.choice(idx, size=min(n, len(idx)), replace=False))
    return np.sort(np.concatenate(keep))


def source_weights(labels: np.ndarray, sources: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-face weights p_union(y) / p_source(y), scaled to average 1: every source's weighted
    class mix becomes the union's (a source lacking a class: the union's ratios between the
    classes it has). One source gives weights of 1."""
    labels, sources = np.asarray(labels), np.asarray(sources)
    if len(labels) != len(sources):
        raise EmorecError(f"{len(labels)} training labels but {len(sources)} face sources")
    union = np.bincount(labels, minlength=num_classes) / len(labels)
    weights = np.empty(len(labels), np.float32)
    for source in np.unique(sources):
        keep = sources == source
        own = np.bincount(labels[keep], minlength=num_classes) / keep.sum()
        weights[keep] = union[labels[keep]] / own[labels[keep]]
    return weights / weights.mean()


def part_sources(folder: Path, part: str, n: int) -> np.ndarray:
    """Each face's source dataset in a prepared part ('' for a single dataset's faces). A part
    that records no face ids (a single dataset's balanced copy) holds one dataset's faces."""
    from emorec.data import prepared
    from emorec.data.combine import source_of

    ids = prepared.load_ids(folder, part)
    return np.full(n, "") if ids is None else source_of(ids)


def training_weights(source_prior: str | None, labels: np.ndarray, sources: np.ndarray | None,
                     num_classes: int, run_name: str) -> np.ndarray | None:
    """The per-face loss weights `train.source_prior` asks for (None: every face counts 1)."""
    if source_prior is None:
        return None
    if source_prior not in SOURCE_PRIORS:
        raise EmorecError(f"params.yaml: train.source_prior must be one of {SOURCE_PRIORS}, got {source_prior!r}")
    if sources is None:
        raise EmorecError(f"{run_name}: train.source_prior: {source_prior} needs each training face's "
                          "source dataset, and this caller gave none")
    weights = source_weights(labels, sources, num_classes)
    kinds = sorted(set(np.asarray(sources).tolist()) - {""})
    print(f"{run_name}: source_prior {source_prior}: {len(kinds) or 1} source(s) {kinds}, face weights "
          f"{weights.min():.2f}-{weights.max():.2f}")
    return weights
