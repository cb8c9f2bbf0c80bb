"""Shared fixtures: small generated FER2013-like data in every layout users have."""

from __future__ import annotations

import csv
import gzip
import io
import os
import sys
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from emorec.data.adapters import fer2013  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_FER = SHARED / "data" / "fer2013" / "fer2013_images.zip"
USAGES = {"train": ["Training"], "test": ["PublicTest", "PrivateTest"]}


def needs_shared(path: Path = SHARED_FER):
    return pytest.mark.skipif(not path.exists(), reason=f"real data not available: {path} is absent "
                              "(../shared is provided beside the checkout in development and CI)")


def fake_face(rng: np.random.Generator, label: int, size: int = 48) -> np.ndarray:
    """A random but class-dependent 48x48 image, so tiny models can learn something."""
    img = rng.integers(0, 60, (size, size)).astype(np.uint8)
    cv2.circle(img, (8 + 5 * label, 24), 6, 255, -1)
    return img


def fer_records(per_class: int = 3, seed: int = 0):
    """[(folder, class, usage, id, image)] covering every class and usage."""
    rng = np.random.default_rng(seed)
    records, next_id = [], 0
    for label, cls in enumerate(fer2013.CLASSES):
        for folder, usages in USAGES.items():
            for usage in usages:
                for _ in range(per_class):
                    records.append((folder, cls, usage, next_id, fake_face(rng, label)))
                    next_id += 1
    return records


def jpeg(img: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", img)  # lossless, so CSV and image layouts agree exactly
    assert ok
    return buf.tobytes()


def write_image_zip(path: Path, records, prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for folder, cls, usage, idx, img in records:
            zf.writestr(f"{prefix}{folder}/{cls}/{usage}_{idx}.png", jpeg(img))
    return path


def write_image_folder(root: Path, records) -> Path:
    for folder, cls, usage, idx, img in records:
        target = root / folder / cls / f"{usage}_{idx}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(jpeg(img))
    return root


def csv_text(records) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["emotion", "pixels", "Usage"])
    for _, cls, usage, _, img in records:
        writer.writerow([fer2013.CLASSES.index(cls), " ".join(map(str, img.reshape(-1))), usage])
    return out.getvalue()


def write_csv(path: Path, records) -> Path:
    text = csv_text(records)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_tar(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def records():
    return fer_records()


@pytest.fixture
def fer_zip(tmp_path, records) -> Path:
    return write_image_zip(tmp_path / "fer2013.zip", records)


@pytest.fixture(autouse=True)
def _mlflow_tracking_uri_restored():
    """A test that calls mlflow.set_tracking_uri (it also sets MLFLOW_TRACKING_URI) must not
    point later tests at its store, which may be gone."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    mlflow = sys.modules.get("mlflow")
    if mlflow is not None:
        mlflow.set_tracking_uri(before)
