"""One training set from several datasets: one label vocabulary, one input format.

Every source's faces are converted to the combined size and channels with the shared
preprocessing (`data.preprocess`), relabelled by class name, and kept only if their class
is in the combined vocabulary (AffectNet's `contempt` is dropped from the 7 basic
emotions). A source whose stored crops are framed looser than the others can be centre-
cropped first (`combine.framing`), so that one model sees one framing. Each face keeps its source in its id (`<source>:<original id>`), so every
source's own validation and test splits stay told apart: evaluate reports accuracy per
source, and `register` chooses on the union of the validation splits."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    framing: dict[str, float] = field(default_factory=dict)   # source -> centre-crop fraction

    @classmethod
    def from_params(cls, cfg: dict) -> "CombineConfig":
        unknown = [c for c in cfg.get("classes", []) if c not in VOCABULARY]
        if unknown:
            raise EmorecError(f"params.yaml: combine.classes {unknown} are not in the vocabulary {list(VOCABULARY)}")
        framing = cfg.get("framing") or {}
        if not isinstance(framing, dict):
            raise EmorecError(f"params.yaml: combine.framing must map a source to a centre-crop fraction, "
                              f"got {framing!r}")
        for source, fraction in framing.items():
            if source not in cfg["sources"]:
                raise EmorecError(f"params.yaml: combine.framing.{source}: {source!r} is not one of "
                                  f"combine.sources {list(cfg['sources'])}")
            if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
                raise EmorecError(f"params.yaml: combine.framing.{source} must be a fraction in (0, 1] "
                                  f"(1: as stored), got {fraction!r}")
        out = cls(str(cfg["name"]), tuple(cfg["sources"]), tuple(cfg["classes"]), int(cfg["size"]),
                  int(cfg["channels"]), {str(s): float(f) for s, f in framing.items()})
        if len(out.sources) < 2 or len(set(out.sources)) != len(out.sources):
            raise EmorecError("params.yaml: combine.sources must name at least two different datasets")
        if out.channels not in (1, 3) or out.size < 16:
            raise EmorecError("params.yaml: combine.channels must be 1 or 3 and combine.size at least 16")
        return out


def crop_centre(images: np.ndarray, fraction: float) -> np.ndarray:
    """The central `fraction` of each face (N, H, W[, C]) at its own resolution; resizing
    comes after, once, so a 96-px AffectNet face cropped to 62 px is resampled only to 48."""
    if fraction == 1:
        return images
    h, w = images.shape[1:3]
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    top, left = (h - ch) // 2, (w - cw) // 2
    return images[:, top:top + ch, left:left + cw]


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
        x = crop_centre(x, cfg.framing.get(source, 1.0))
        images.append(resize(convert_channels(np.ascontiguousarray(x), cfg.channels), cfg.size))
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
