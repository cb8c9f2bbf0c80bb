"""One training set from several datasets: one label vocabulary, one input format.

Every source's faces are converted to the combined size and channels with the shared
preprocessing (`data.preprocess`), relabelled by class name, and kept only if their class
is in the combined vocabulary (AffectNet's `contempt` is dropped from the 7 basic
emotions). Each face keeps its source in its id (`<source>:<original id>`), so every
source's own validation and test splits stay told apart: evaluate reports accuracy per
source, and `register` chooses on the union of the validation splits."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emorec.data.preprocess import convert_channels, resize
from emorec.errors import EmorecError
from emorec.labels import VOCABULARY

PARTS = ("train", "train_balanced", "val", "test")


@dataclass(frozen=True)
class CombineConfig:
    name: str
    sources: tuple[str, ...]
    classes: tuple[str, ...]
    size: int
    channels: int

    @classmethod
    def from_params(cls, cfg: dict) -> "CombineConfig":
        unknown = [c for c in cfg.get("classes", []) if c not in VOCABULARY]
        if unknown:
            raise EmorecError(f"params.yaml: combine.classes {unknown} are not in the vocabulary {list(VOCABULARY)}")
        out = cls(str(cfg["name"]), tuple(cfg["sources"]), tuple(cfg["classes"]), int(cfg["size"]),
                  int(cfg["channels"]))
        if len(out.sources) < 2 or len(set(out.sources)) != len(out.sources):
            raise EmorecError("params.yaml: combine.sources must name at least two different datasets")
        if out.channels not in (1, 3) or out.size < 16:
            raise EmorecError("params.yaml: combine.channels must be 1 or 3 and combine.size at least 16")
        return out


def combine_part(parts: dict[str, dict], cfg: CombineConfig) -> tuple[dict, dict]:
    """{source: npz dict of one part} -> (combined npz dict, {source: {class: count}})."""
    images, labels, ids, counts = [], [], [], {}
    for source, data in parts.items():
        names = [str(c) for c in data["classes"]]
        keep_map = np.array([cfg.classes.index(c) if c in cfg.classes else -1 for c in names])
        new = keep_map[data["labels"]]
        keep = new >= 0
        x = data["images"][keep]
        if x.ndim == 3:
            x = x[..., None]
        images.append(resize(convert_channels(x, cfg.channels), cfg.size))
        labels.append(new[keep])
        source_ids = data.get("source_id")
        base = source_ids[keep] if source_ids is not None else np.arange(int(keep.sum())).astype(str)
        ids.append(np.array([f"{source}:{i}" for i in base]))
        counts[source] = {c: int((new[keep] == k).sum()) for k, c in enumerate(cfg.classes)}
    out = {"images": np.concatenate(images), "labels": np.concatenate(labels).astype(np.int64),
           "source_id": np.concatenate(ids), "classes": np.array(cfg.classes)}
    return out, counts


def source_of(ids) -> np.ndarray:
    """The source dataset of each combined face id ('' for ids of a single dataset)."""
    return np.array([str(i).split(":", 1)[0] if ":" in str(i) else "" for i in ids])
