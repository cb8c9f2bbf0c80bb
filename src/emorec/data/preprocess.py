"""The one preprocessing path shared by training, evaluation and inference, so the
three cannot drift: resize to the model's input size, convert channels, scale to [0, 1]."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from emorec.errors import EmorecError

CHANNEL_POLICIES = ("convert", "refuse")


@dataclass(frozen=True)
class InputSpec:
    """What a trained model expects; travels with the model (run.json, MLflow)."""

    size: int
    channels: int
    classes: tuple[str, ...]
    scale: str = "divide_by_255"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "InputSpec":
        return cls(int(d["size"]), int(d["channels"]), tuple(d["classes"]), d.get("scale", "divide_by_255"))


def convert_channels(images: np.ndarray, channels: int, policy: str = "convert") -> np.ndarray:
    """uint8 (N,H,W,C) -> (N,H,W,channels); grey is replicated, RGB is luma-weighted."""
    have = images.shape[-1]
    if have == channels:
        return images
    if policy == "refuse":
        raise EmorecError(f"images have {have} channel(s) but the model expects {channels}; "
                          "set channel_policy: convert to convert them")
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if have == 3 and channels == 1:
        weights = np.array([0.299, 0.587, 0.114], np.float32)  # RGB order
        grey = np.tensordot(images.astype(np.float32), weights, axes=([-1], [0]))
        return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None]
    raise EmorecError(f"cannot convert {have}-channel images to {channels} channels")


def resize(images: np.ndarray, size: int) -> np.ndarray:
    if images.shape[1] == size and images.shape[2] == size:
        return images
    interp = cv2.INTER_AREA if images.shape[1] > size else cv2.INTER_LINEAR
    out = np.empty((len(images), size, size, images.shape[-1]), np.uint8)
    for i, img in enumerate(images):
        out[i] = cv2.resize(img, (size, size), interpolation=interp).reshape(size, size, -1)
    return out


def to_model_input(images: np.ndarray, spec: InputSpec, channel_policy: str = "convert") -> np.ndarray:
    """uint8 faces of any size/channels -> float32 model input in [0, 1]."""
    if images.ndim == 3:
        images = images[..., None]
    if images.dtype != np.uint8:
        raise EmorecError(f"expected uint8 images, got {images.dtype}")
    images = convert_channels(images, spec.channels, channel_policy)
    images = resize(images, spec.size)
    return images.astype(np.float32) / 255.0
