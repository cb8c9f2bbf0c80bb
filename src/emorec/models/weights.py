"""Pretrained backbone weights: find them in the local cache, download them when allowed,
or say exactly which file to place where.

`weights:` in params.yaml is `imagenet`, `null` (train from scratch) or a path to a
weights file. `imagenet` files live where Keras keeps them (`$KERAS_HOME/models`, by
default `~/.keras/models`) and vit-keras ones in `$KERAS_HOME/weights`. Nothing here
touches the network unless `allow_download` is true and the file is missing; nothing
touches it at import time.
"""

from __future__ import annotations

import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from emorec.errors import EmorecError

_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications"
_VIT = "https://github.com/faustomorales/vit-keras/releases/download/dl"

FALLBACKS = (None, "scratch")


@dataclass(frozen=True)
class WeightFile:
    filename: str
    url: str
    checksum: str | None   # md5 (32 hex) or sha256 (64 hex), as the publisher gives it
    subdir: str = "models"

    def cache_path(self) -> Path:
        home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras"))
        return home / self.subdir / self.filename


# The ImageNet files the Keras applications (3.x) load for include_top=False, with the
# checksums Keras itself verifies; and the vit-keras ImageNet-21k+1k files.
PRETRAINED: dict[str, WeightFile] = {
    "densenet121": WeightFile(
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_KERAS_APPS}/densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "30ee3e1110167f948a6b9946edeeb738"),
    "vgg16": WeightFile(
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_KERAS_APPS}/vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "6d6bbae143d832006294945121d1f1fc"),
    "efficientnetv2b0": WeightFile(
        "efficientnetv2-b0_notop.h5",
        f"{_KERAS_APPS}/efficientnet_v2/efficientnetv2-b0_notop.h5",
        "893217f2bb855e2983157299931e43ff"),
    "inceptionv3": WeightFile(
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        f"{_KERAS_APPS}/inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "bcbd6486424b2319ff4ef7d526e38f63"),
    "custom_mobilenet": WeightFile(   # MobileNet alpha 1.0; Keras publishes no checksum
        "mobilenet_1_0_224_tf_no_top.h5",
        f"{_KERAS_APPS}/mobilenet/mobilenet_1_0_224_tf_no_top.h5", None),
    "vit_b16": WeightFile("ViT-B_16_imagenet21k+imagenet2012.npz",
                          f"{_VIT}/ViT-B_16_imagenet21k+imagenet2012.npz", None, "weights"),
    "vit_b32": WeightFile("ViT-B_32_imagenet21k+imagenet2012.npz",
                          f"{_VIT}/ViT-B_32_imagenet21k+imagenet2012.npz", None, "weights"),
}


@dataclass(frozen=True)
class ResolvedWeights:
    """What a builder gets: a local file to load (or None) and the label every report shows."""

    path: Path | None
    label: str            # "imagenet" | "scratch" | "file:<name>"
    requested: str | None
    note: str = ""

    @property
    def pretrained(self) -> bool:
        return self.path is not None


def _checksum_ok(path: Path, checksum: str | None) -> bool:
    if not checksum:
        return True
    algo = hashlib.md5 if len(checksum) == 32 else hashlib.sha256
    digest = algo()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest() == checksum


def _download(spec: WeightFile, timeout: float) -> Path:
    import urllib.request

    target = spec.cache_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        print(f"downloading {spec.url} -> {target}")
        urllib.request.urlretrieve(spec.url, tmp)
    finally:
        socket.setdefaulttimeout(previous)
    if not _checksum_ok(tmp, spec.checksum):
        tmp.unlink(missing_ok=True)
        raise EmorecError(f"{spec.url}: downloaded file fails its checksum {spec.checksum}")
    os.replace(tmp, target)
    return target


def resolve(model: str, weights: str | None, fallback: str | None = None,
            allow_download: bool = True, timeout: float = 30.0) -> ResolvedWeights:
    """Turn the `weights` param into a local file, or fail with the file to place.

    With `fallback: scratch` a missing file is not an error: the model trains from scratch
    (every layer trainable) and the label says so."""
    if fallback not in FALLBACKS:
        raise EmorecError(f"params.yaml: weights_fallback must be null or 'scratch', got {fallback!r}")
    if weights in (None, "scratch", "null"):
        return ResolvedWeights(None, "scratch", None)
    if weights != "imagenet":
        path = Path(weights).expanduser()
        if path.is_file():
            return ResolvedWeights(path, f"file:{path.name}", weights)
        problem = f"weights file {path} does not exist"
        if fallback == "scratch":
            return ResolvedWeights(None, "scratch", weights, f"{problem}; trained from scratch")
        raise EmorecError(f"models.{model}.weights: {problem}")
    spec = PRETRAINED.get(model)
    if spec is None:
        raise EmorecError(f"models.{model}.weights: imagenet weights are not published for "
                          f"{model!r}; use null (scratch) or a path")
    path = spec.cache_path()
    if path.is_file():
        if not _checksum_ok(path, spec.checksum):
            raise EmorecError(f"{path}: checksum differs from {spec.checksum}; delete it and "
                              f"place a fresh copy of {spec.url}")
        return ResolvedWeights(path, "imagenet", weights)
    reason = "downloads are off (allow_download: false)"
    if allow_download:
        try:
            return ResolvedWeights(_download(spec, timeout), "imagenet", weights)
        except EmorecError:
            raise
        except Exception as exc:  # no network, proxy, HTTP error
            reason = f"download failed ({type(exc).__name__}: {exc})"
    message = (f"{model}: ImageNet weights {spec.filename} are not in the local cache and {reason}. "
               f"Download {spec.url} on a machine with internet access and place it at {path} "
               f"(or set models.{model}.weights to its path), or set "
               f"models.{model}.weights_fallback: scratch to train from scratch")
    if fallback == "scratch":
        return ResolvedWeights(None, "scratch", weights, message)
    raise EmorecError(message)
