"""Decoding and normalising face images the same way for every adapter."""

from __future__ import annotations

import cv2
import numpy as np

from emorec.errors import DataFormatError

CHANNEL_POLICIES = ("convert", "refuse")


def decode(data: bytes, where: str, channels: int, channel_policy: str = "convert") -> np.ndarray:
    """Bytes of a JPEG/PNG -> uint8 (H, W, channels), RGB order for colour.

    An image whose channel count differs from what the dataset declares is converted
    (grey replicated, colour luma-weighted) or refused, per `channel_policy`.
    """
    arr = np.frombuffer(data, np.uint8) if data else np.zeros(0, np.uint8)
    img = cv2.imdecode(arr, cv2.IMREAD_UNCHANGED) if arr.size else None
    if img is None:
        raise DataFormatError(f"{where}: cannot decode image (corrupt or not an image file)")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[:, :, :3]
    have = 1 if img.ndim == 2 else img.shape[2]
    if have == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if have != channels:
        if channel_policy == "refuse":
            kind = {1: "greyscale", 3: "RGB"}
            raise DataFormatError(
                f"{where}: {kind.get(have, have)} image where {kind.get(channels, channels)} is "
                "expected (set channel_policy: convert to convert such images)")
        if channel_policy != "convert":
            raise DataFormatError(f"unknown channel_policy {channel_policy!r}; use {CHANNEL_POLICIES}")
        img = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) if channels == 3 else cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return img.reshape(img.shape[0], img.shape[1], channels)


def fit_size(img: np.ndarray, size: int | None) -> np.ndarray:
    """Resize to size x size (area interpolation when shrinking); None keeps the image."""
    if size is None or (img.shape[0] == size and img.shape[1] == size):
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    out = cv2.resize(img, (size, size), interpolation=interp)
    return out.reshape(size, size, img.shape[2])


def crop_box(img: np.ndarray, box: tuple[int, int, int, int], where: str) -> np.ndarray:
    """Crop (x, y, w, h); a box reaching outside the image is an error, not a silent clip."""
    x, y, w, h = box
    height, width = img.shape[:2]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise DataFormatError(
            f"{where}: face box x={x} y={y} w={w} h={h} lies outside the {width}x{height} image")
    return img[y:y + h, x:x + w]
