"""RAF-DB and AffectNet adapters in every layout, on generated images, plus the real
RAF-DB label file and the real AffectNet subset."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, needs_shared

from emorec.data import validation
from emorec.data.adapters import affectnet, rafdb
from emorec.errors import DataFormatError

RAF_LABELS = SHARED / "data" / "rafdb" / "list_patition_label.txt"
AFFECTNET_ZIP = SHARED / "data" / "affectnet" / "affectnet_subset.zip"


def encode(img: np.ndarray, ext: str = ".jpg") -> bytes:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


def colour(seed: int, size: int = 100) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size, size, 3)).astype(np.uint8)


def raf_official_zip(path: Path, label_text: str, skip: set[str] = frozenset(),
                     grey: set[str] = frozenset(), prefix: str = "basic/") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{prefix}EmoLabel/list_patition_label.txt", label_text)
        for i, line in enumerate(label_text.splitlines()):
            name = line.split()[0] if line.strip() else None
            if not name or name in skip:
                continue
            stem = name.rsplit(".", 1)[0]
            img = colour(i, 8)
            if name in grey:
                img = img[..., 0]
            zf.writestr(f"{prefix}Image/aligned/{stem}_aligned.jpg", encode(img))
    return path


SMALL_LABELS = "train_00001.jpg 5\r\ntrain_00002.jpg 4\r\ntest_0001.jpg 7\r\ntrain_00003.jpg 1\r\n"


def test_rafdb_official_layout_maps_labels_and_splits(tmp_path):
    cache = rafdb.load(raf_official_zip(tmp_path / "raf.zip", SMALL_LABELS), {"image_size": 8})
    assert len(cache) == 4 and cache.images.shape[1:] == (8, 8, 3)
    got = {sid.rsplit("/", 1)[1]: (str(sp), cache.classes[lab])
           for sid, sp, lab in zip(cache.source_id, cache.split, cache.labels)}
    assert got == {"train_00001_aligned.jpg": ("train", "sad"), "train_00002_aligned.jpg": ("train", "happy"),
                   "test_0001_aligned.jpg": ("test", "neutral"), "train_00003_aligned.jpg": ("train", "surprise")}


def test_rafdb_unknown_label_and_missing_image(tmp_path):
    bad = SMALL_LABELS.replace("train_00002.jpg 4", "train_00002.jpg 9")
    with pytest.raises(DataFormatError, match=r"line 2: unknown label '9'"):
        rafdb.load(raf_official_zip(tmp_path / "a.zip", bad))
    path = raf_official_zip(tmp_path / "b.zip", SMALL_LABELS, skip={"test_0001.jpg"})
    with pytest.raises(DataFormatError, match=r"image for test_0001.jpg missing"):
        rafdb.load(path)


def test_rafdb_greyscale_image_converted_or_refused(tmp_path):
    path = raf_official_zip(tmp_path / "g.zip", SMALL_LABELS, grey={"train_00002.jpg"})
    cache = rafdb.load(path, {"image_size": 8, "channel_policy": "convert"})
    assert cache.images.shape[-1] == 3
    with pytest.raises(DataFormatError, match="greyscale image where RGB is expected"):
        rafdb.load(path, {"image_size": 8, "channel_policy": "refuse"})


def test_rafdb_kaggle_layout_with_label_csvs(tmp_path):
    path = tmp_path / "kaggle.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("DATASET/train/1/train_0001_aligned.jpg", encode(colour(1, 8)))
        zf.writestr("DATASET/train/4/train_0002_aligned.jpg", encode(colour(2, 8)))
        zf.writestr("DATASET/test/6/test_0001_aligned.jpg", encode(colour(3, 8)))
        zf.writestr("train_labels.csv", "image,label\ntrain_0001_aligned.jpg,1\ntrain_0002_aligned.jpg,4\n")
        zf.writestr("test_labels.csv", "image,label\ntest_0001_aligned.jpg,6\n")
    cache = rafdb.load(path, {"image_size": 8})
    assert sorted((str(s), cache.classes[lab]) for s, lab in zip(cache.split, cache.labels)) == [
        ("test", "angry"), ("train", "happy"), ("train", "surprise")]
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("DATASET/train/9/train_0003_aligned.jpg", encode(colour(4, 8)))
    with pytest.raises(DataFormatError, match="unknown class folder train/'9'"):
        rafdb.load(path, {"image_size": 8})


@pytest.mark.integration
@needs_shared(RAF_LABELS)
def test_real_rafdb_label_file_with_generated_images(tmp_path):
    text = RAF_LABELS.read_bytes().decode("utf-8")
    assert "\r\n" in text  # the real file is CRLF
    entries = rafdb.parse_label_file(text.splitlines(), str(RAF_LABELS))
    assert len(entries) == 15339
    assert sum(split == "train" for _, split, _ in entries) == 12271
    path = tmp_path / "basic"
    (path / "EmoLabel").mkdir(parents=True)
    (path / "EmoLabel" / "list_patition_label.txt").write_bytes(text.encode("utf-8"))
    aligned = path / "Image" / "aligned"
    aligned.mkdir(parents=True)
    tiny = encode(np.full((4, 4, 3), 128, np.uint8))
    for name, _, _ in entries:
        (aligned / f"{name.rsplit('.', 1)[0]}_aligned.jpg").write_bytes(tiny)
    cache = rafdb.load(path, {"image_size": 4})
    assert {s: cache.counts(s) for s in ("train", "test")} == rafdb.EXPECTED_COUNTS


def affectnet_folders(path: Path, per_class: int = 2, extra: dict | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        i = 0
        for split in ("train", "valid", "test"):
            for cls in ("anger", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"):
                for _ in range(per_class):
                    zf.writestr(f"{split}/{cls}/image{i:07d}.jpg", encode(colour(i, 16)))
                    i += 1
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_affectnet_class_folders_variant_8_and_7(tmp_path):
    path = affectnet_folders(tmp_path / "aff.zip")
    eight = affectnet.load(path, {"variant": 8, "image_size": 16})
    assert eight.classes[-1] == "contempt" and len(eight) == 48
    assert eight.counts("val") == {c: 2 for c in eight.classes}
    seven = affectnet.load(path, {"variant": 7, "image_size": 16})
    assert "contempt" not in seven.classes and len(seven) == 42
    assert seven.meta["dropped_classes"] == {"contempt": 6}


def test_affectnet_unknown_class_folder(tmp_path):
    path = affectnet_folders(tmp_path / "aff.zip", extra={"train/bored/x.jpg": encode(colour(0, 16))})
    with pytest.raises(DataFormatError, match="unknown class folder train/'bored'"):
        affectnet.load(path, {"image_size": 16})


def official_affectnet(path: Path, rows: list[list], header: list[str] | None = None) -> Path:
    out = io.StringIO()
    out.write(",".join(header or affectnet.CSV_COLUMNS) + "\n")
    for row in rows:
        out.write(",".join(map(str, row)) + "\n")
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("AffectNet/training.csv", out.getvalue())
        zf.writestr("AffectNet/validation.csv", ",".join(affectnet.CSV_COLUMNS) + "\n")
        img = np.zeros((60, 80, 3), np.uint8)
        img[10:40, 20:50] = (200, 100, 50)  # the face region
        zf.writestr("AffectNet/Manually_Annotated_Images/1/a.png", encode(img, ".png"))
    return path


def _row(expression, box=(20, 10, 30, 30), name="1/a.png"):
    return [name, *box, "1;2;3", expression, 0.1, 0.2]


def test_affectnet_official_layout_crops_and_drops_non_faces(tmp_path):
    path = official_affectnet(tmp_path / "off.zip", [_row(1), _row(8), _row(10), _row(6)])
    cache = affectnet.load(path, {"image_size": 30})
    assert [cache.classes[i] for i in cache.labels] == ["happy", "angry"]
    assert cache.meta["dropped"] == {"none": 1, "no-face": 1}
    np.testing.assert_array_equal(cache.images[0][0, 0], [200, 100, 50])  # the crop is the face


def test_affectnet_box_outside_image_and_wrong_columns(tmp_path):
    path = official_affectnet(tmp_path / "box.zip", [_row(1, box=(70, 10, 30, 30))])
    with pytest.raises(DataFormatError, match=r"line 2 \(1/a.png\): face box .* outside the 80x60 image"):
        affectnet.load(path)
    cols = ["path", "x", "y", "w", "h", "landmarks", "label", "valence", "arousal"]
    path = official_affectnet(tmp_path / "cols.zip", [_row(1)], header=cols)
    with pytest.raises(DataFormatError, match="unexpected columns"):
        affectnet.load(path)


@pytest.mark.integration
@needs_shared(AFFECTNET_ZIP)
def test_real_affectnet_subset_counts_and_duplicates():
    cache = affectnet.load(AFFECTNET_ZIP, {"variant": 8, "image_size": 96})
    assert (len(cache), *(int((cache.split == s).sum()) for s in ("train", "val", "test"))) == (
        17465, 12167, 3546, 1752)
    report = validation.validate(cache, "affectnet", 96, 3, None)
    assert report.failures == []
    assert report.duplicate_summary()["groups"] == 190
    assert report.duplicate_summary()["cross_split_groups"] == 97
