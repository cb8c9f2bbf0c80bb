"""Offline augmentation for class balancing (paper §III, §IV.D).

One random affine warp per generated image (rotation, width/height shift, shear, zoom,
horizontal flip), like Keras' ImageDataGenerator, but written with OpenCV so it is
deterministic given the seed and independent of the Keras backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from emorec.errors import EmorecError


@dataclass(frozen=True)
class AugmentConfig:
    rotation_degrees: float = 10.0
    width_shift: float = 0.1
    height_shift: float = 0.1
    shear_degrees: float = 5.0
    zoom: float = 0.1
    horizontal_flip: bool = True

    @classmethod
    def from_params(cls, p: dict) -> "AugmentConfig":
        known = set(cls.__dataclass_fields__)
        unknown = set(p) - known
        if unknown:
            raise EmorecError(f"params.yaml: unknown augmentation setting(s) {sorted(unknown)}; "
                              f"known: {sorted(known)}")
        return cls(**p)


def random_affine(rng: np.random.Generator, size: tuple[int, int], cfg: AugmentConfig) -> np.ndarray:
    """A 2x3 affine matrix about the image centre."""
    h, w = size
    angle = np.deg2rad(rng.uniform(-cfg.rotation_degrees, cfg.rotation_degrees))
    shear = np.deg2rad(rng.uniform(-cfg.shear_degrees, cfg.shear_degrees))
    zx, zy = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom, size=2)
    tx = rng.uniform(-cfg.width_shift, cfg.width_shift) * w
    ty = rng.uniform(-cfg.height_shift, cfg.height_shift) * h
    flip = -1.0 if (cfg.horizontal_flip and rng.random() < 0.5) else 1.0
    cos, sin = np.cos(angle), np.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])
    shear_m = np.array([[1.0, -np.sin(shear)], [0.0, np.cos(shear)]])
    scale = np.diag([zx * flip, zy])
    linear = rotation @ shear_m @ scale
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    offset = centre - linear @ centre + np.array([tx, ty])
    return np.hstack([linear, offset[:, None]]).astype(np.float32)


def augment_image(image: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    h, w = image.shape[:2]
    matrix = random_affine(rng, (h, w), cfg)
    out = cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REFLECT_101)
    return out.reshape(image.shape)


def balance_target(counts: np.ndarray, target: str | int) -> int:
    if isinstance(target, str):
        if target == "max":
            return int(counts.max())
        if target == "median":
            return int(np.median(counts))
        try:
            target = int(target)
        except ValueError:
            raise EmorecError(f"params.yaml: balance target {target!r} must be 'max', 'median' "
                              "or a number of images per class") from None
    if int(target) < 1:
        raise EmorecError(f"params.yaml: balance target must be positive, got {target}")
    return int(target)


def balance(images: np.ndarray, labels: np.ndarray, num_classes: int, target: str | int,
            cfg: AugmentConfig, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Add augmented copies of minority-class images until each class reaches the target.

    Classes already at or above the target are left as they are (no under-sampling).
    Returns (images, labels, is_augmented).
    """
    counts = np.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        empty = np.flatnonzero(counts == 0).tolist()
        raise EmorecError(f"cannot balance: class index(es) {empty} have no training images")
    goal = balance_target(counts, target)
    rng = np.random.default_rng(seed)
    new_images, new_labels = [], []
    for cls in range(num_classes):
        missing = goal - counts[cls]
        if missing <= 0:
            continue
        pool = np.flatnonzero(labels == cls)
        picks = rng.choice(pool, size=missing, replace=True)
        for idx in picks:
            new_images.append(augment_image(images[idx], rng, cfg))
            new_labels.append(cls)
    if not new_images:
        return images, labels, np.zeros(len(labels), bool)
    out_images = np.concatenate([images, np.stack(new_images)])
    out_labels = np.concatenate([labels, np.array(new_labels, labels.dtype)])
    flags = np.concatenate([np.zeros(len(labels), bool), np.ones(len(new_labels), bool)])
    return out_images, out_labels, flags


def augmented_batches(images: np.ndarray, labels: np.ndarray, spec, batch_size: int,
                      augmentation: dict, seed: int, full_batches_only: bool = False,
                      weights: np.ndarray | None = None):
    """A Keras PyDataset that re-shuffles and randomly warps every training image each epoch
    (the on-the-fly side of Keras' ImageDataGenerator), backend-neutral and seeded. With
    `weights`, each batch carries its faces' loss weights too."""
    import keras

    from emorec.data.preprocess import to_model_input

    cfg = AugmentConfig.from_params(augmentation)

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(images))

        def __len__(self):
            return len(images) // batch_size if full_batches_only else int(np.ceil(len(images) / batch_size))

        def __getitem__(self, index):
            idx = self.order[index * batch_size:(index + 1) * batch_size]
            batch = np.stack([augment_image(images[i], self.rng, cfg) for i in idx])
            if weights is None:
                return to_model_input(batch, spec), labels[idx]
            return to_model_input(batch, spec), labels[idx], weights[idx]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(images))

    return Batches()
