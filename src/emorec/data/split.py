"""Train/validation/test splitting per protocol, and the cross-split duplicate policy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from emorec.data.adapters.base import DatasetCache
from emorec.errors import EmorecError

PROTOCOLS = ("paper", "canonical")
DUPLICATE_POLICIES = ("fail", "drop_from_train", "report")


@dataclass
class Splits:
    train: DatasetCache
    val: DatasetCache
    test: DatasetCache
    dropped_duplicates: list[str]

    def summary(self) -> dict:
        return {name: {"n": len(part), "counts": part.counts()}
                for name, part in (("train", self.train), ("val", self.val), ("test", self.test))}


def make_splits(cache: DatasetCache, protocol: str, val_fraction: float, seed: int,
                paper_test_splits: tuple[str, ...] = ("test",)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean masks (train, val, test) over the cache.

    paper: the official training data split 85/15 (stratified, seeded) into train and
    validation; `paper_test_splits` of the source are the test set.
    canonical: the source's own train/val/test splits as they are.
    """
    if protocol not in PROTOCOLS:
        raise EmorecError(f"params.yaml: unknown split protocol {protocol!r}; use one of {PROTOCOLS}")
    n = len(cache)
    if protocol == "canonical":
        masks = tuple(cache.split == s for s in ("train", "val", "test"))
        if not masks[1].any():
            raise EmorecError("canonical protocol needs an official validation split, and this "
                              "dataset has none; use protocol: paper")
        return masks
    if not 0 < val_fraction < 1:
        raise EmorecError(f"params.yaml: val_fraction must be in (0, 1), got {val_fraction}")
    official_train = np.flatnonzero(cache.split == "train")
    tr_idx, va_idx = train_test_split(official_train, test_size=val_fraction,
                                      stratify=cache.labels[official_train], random_state=seed)
    train = np.zeros(n, bool)
    val = np.zeros(n, bool)
    train[tr_idx] = True
    val[va_idx] = True
    test = np.isin(cache.split, list(paper_test_splits))
    return train, val, test


def apply_duplicate_policy(cache: DatasetCache, masks: tuple[np.ndarray, np.ndarray, np.ndarray],
                           duplicate_groups: list[dict], policy: str) -> tuple[np.ndarray, list[str]]:
    """Return the train mask after the policy, and the source ids dropped from train.

    A duplicate group is checked against the splits *as used for training*: an image in
    train whose exact copy is in validation or test leaks evaluation data into training.
    """
    if policy not in DUPLICATE_POLICIES:
        raise EmorecError(f"params.yaml: unknown duplicate policy {policy!r}; use one of "
                          f"{DUPLICATE_POLICIES}")
    train, val, test = masks
    index = {sid: i for i, sid in enumerate(cache.source_id.astype(str))}
    drop: list[int] = []
    leaking_groups = 0
    for group in duplicate_groups:
        rows = [index[s] for s in group["source_ids"] if s in index]
        in_train = [r for r in rows if train[r]]
        in_eval = [r for r in rows if val[r] or test[r]]
        if in_train and in_eval:
            leaking_groups += 1
            drop.extend(in_train)
    if policy == "fail" and leaking_groups:
        raise EmorecError(f"{leaking_groups} duplicate group(s) span train and validation/test; "
                          "duplicates policy is 'fail' (see the validation report)")
    new_train = train.copy()
    if policy == "drop_from_train" and drop:
        new_train[drop] = False
    dropped = [str(cache.source_id[i]) for i in sorted(set(drop))] if policy == "drop_from_train" else []
    return new_train, dropped
