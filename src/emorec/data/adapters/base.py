"""The one interface every dataset adapter implements, and the normalized cache it yields.

A cache is a plain .npz file: uint8 images (N, H, W, C), integer labels indexing
`classes` (names from `emorec.labels.VOCABULARY`), the dataset's own official split
per image ("train", "val" or "test") and a source id that points back at the original
file or CSV row. Every later stage reads only this cache.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from emorec import files
from emorec.errors import DataFormatError

SPLITS = ("train", "val", "test")


@dataclass
class DatasetCache:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,) indices into classes
    split: np.ndarray  # str (N,) official split of the source
    source_id: np.ndarray  # str (N,) where each image came from
    classes: tuple[str, ...]
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.images)
        for name in ("labels", "split", "source_id"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"cache field {name} has {len(getattr(self, name))} rows, images {n}")
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 (N,H,W,C), got {self.images.dtype} {self.images.shape}")

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, mask_or_index: np.ndarray) -> "DatasetCache":
        return DatasetCache(self.images[mask_or_index], self.labels[mask_or_index],
                            self.split[mask_or_index], self.source_id[mask_or_index],
                            self.classes, dict(self.meta))

    def counts(self, split: str | None = None) -> dict[str, int]:
        labels = self.labels if split is None else self.labels[self.split == split]
        binc = np.bincount(labels, minlength=len(self.classes))
        return {c: int(n) for c, n in zip(self.classes, binc)}

    def save(self, path: str | os.PathLike) -> None:
        files.save_npz(path, images=self.images, labels=self.labels.astype(np.int64),
                    split=self.split.astype(str), source_id=self.source_id.astype(str),
                    classes=np.array(self.classes, dtype=str),
                    meta=np.array(_dump_meta(self.meta)))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "DatasetCache":
        path = Path(path)
        if not path.exists():
            raise DataFormatError(f"{path}: dataset cache not found; run the fetch stage first")
        try:
            data = files.load_npz(path)
            return cls(data["images"], data["labels"], data["split"], data["source_id"],
                       tuple(str(c) for c in data["classes"]), _load_meta(str(data["meta"])))
        except (KeyError, ValueError, OSError) as exc:
            raise DataFormatError(f"{path}: not a valid emorec dataset cache ({exc})") from exc


def _dump_meta(meta: dict) -> str:
    import json

    return json.dumps(meta, sort_keys=True, default=str)


def _load_meta(text: str) -> dict:
    import json

    return json.loads(text) if text else {}


def stack_images(images: list[np.ndarray], source: str) -> np.ndarray:
    if not images:
        raise DataFormatError(f"{source}: no images found")
    shapes = {img.shape for img in images}
    if len(shapes) != 1:
        raise DataFormatError(
            f"{source}: images have different shapes {sorted(shapes)[:4]}; "
            "resize them to one size first"
        )
    return np.stack(images).astype(np.uint8)


class FaceCollector:
    """Decodes, optionally crops, resizes and gathers faces for a cache, honouring
    max_per_class, so every adapter turns files into cache rows the same way."""

    def __init__(self, classes: tuple[str, ...], cfg: dict, size: int, channels: int):
        self.classes, self.size, self.channels = classes, size, channels
        self.channel_policy = cfg.get("channel_policy", "convert")
        self.max_per_class = cfg.get("max_per_class")
        self.taken: dict[tuple[str, str], int] = {}
        self.images: list[np.ndarray] = []
        self.labels: list[int] = []
        self.splits: list[str] = []
        self.ids: list[str] = []

    def full(self, split: str, cls: str) -> bool:
        return bool(self.max_per_class) and self.taken.get((split, cls), 0) >= self.max_per_class

    def add(self, data: bytes, source_id: str, where: str, split: str, cls: str,
            box: tuple[int, int, int, int] | None = None, box_where: str | None = None) -> None:
        from emorec.data.adapters.imaging import crop_box, decode, fit_size

        img = decode(data, where, self.channels, self.channel_policy)
        if box is not None:
            img = crop_box(img, box, box_where or where)
        self.images.append(fit_size(img, self.size))
        self.labels.append(self.classes.index(cls))
        self.splits.append(split)
        self.ids.append(source_id)
        self.taken[(split, cls)] = self.taken.get((split, cls), 0) + 1

    def cache(self, source: str, meta: dict) -> DatasetCache:
        return DatasetCache(stack_images(self.images, source), np.array(self.labels, np.int64),
                            np.array(self.splits), np.array(self.ids), self.classes, meta)
