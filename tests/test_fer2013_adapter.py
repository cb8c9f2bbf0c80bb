"""The FER2013 adapter on every source form, and each kind of bad input."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from conftest import (
    SHARED_FER,
    csv_text,
    fer_records,
    jpeg,
    needs_shared,
    write_csv,
    write_image_folder,
    write_image_zip,
    write_tar,
)

from emorec.data.adapters import fer2013, fetch
from emorec.data.adapters.sources import ArchiveReader, verify_sha256
from emorec.errors import DataFormatError, DataNotFoundError, EmorecError
from emorec.files import sha256_file


def _sorted(cache):
    order = np.lexsort((cache.labels, cache.split, cache.images.reshape(len(cache), -1).sum(1)))
    return cache.images[order], cache.labels[order], cache.split[order]


def test_image_zip_maps_usage_prefix_to_splits(fer_zip, records):
    cache = fer2013.load(fer_zip)
    assert len(cache) == len(records)
    assert cache.images.shape[1:] == (48, 48, 1) and cache.images.dtype == np.uint8
    # 3 per class and usage: Training -> train, PublicTest -> val, PrivateTest -> test
    for split in ("train", "val", "test"):
        assert cache.counts(split) == {c: 3 for c in fer2013.CLASSES}
    first = cache.source_id[0]
    assert first.endswith(".png") and "/" in first


def test_every_source_form_gives_the_same_data(tmp_path, records):
    reference = _sorted(fer2013.load(write_image_zip(tmp_path / "a.zip", records)))
    text = csv_text(records).encode()
    forms = [
        write_image_zip(tmp_path / "nested.zip", records, prefix="fer2013/"),
        write_image_folder(tmp_path / "folder", records),
        write_csv(tmp_path / "fer2013.csv", records),
        write_csv(tmp_path / "fer2013.csv.gz", records),
        write_tar(tmp_path / "fer2013.tar.gz", {"fer2013/fer2013.csv": text, "fer2013/README": b"x"}),
    ]
    for path in forms:
        got = _sorted(fer2013.load(path))
        for a, b in zip(reference, got):
            np.testing.assert_array_equal(a, b, err_msg=str(path))


def test_max_per_class_keeps_a_deterministic_subset(fer_zip):
    cache = fer2013.load(fer_zip, {"max_per_class": 2})
    assert cache.counts("train") == {c: 2 for c in fer2013.CLASSES}
    again = fer2013.load(fer_zip, {"max_per_class": 2})
    assert list(cache.source_id) == list(again.source_id)


def test_corrupt_jpeg_error_names_the_file(tmp_path, records):
    path = write_image_zip(tmp_path / "bad.zip", records)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("train/happy/Training_99999.jpg", b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(DataFormatError, match=r"Training_99999\.jpg.*cannot decode"):
        fer2013.load(path)


def test_csv_row_with_wrong_pixel_count(tmp_path, records):
    lines = csv_text(records).splitlines()
    emotion, pixels, usage = lines[3].split(",")
    lines[3] = ",".join([emotion, " ".join(pixels.split()[:-5]), usage])
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"line 4: 2299 pixel values, expected 2304"):
        fer2013.load(path)


def test_csv_label_outside_0_to_6(tmp_path, records):
    lines = csv_text(records).splitlines()
    lines[2] = "7" + lines[2][1:]
    path = tmp_path / "fer2013.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"line 3: emotion 7 is outside 0\.\.6"):
        fer2013.load(path)


def test_csv_with_other_columns_is_refused(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("label,image\n0,1 2 3\n")
    with pytest.raises(DataFormatError, match="unexpected CSV columns"):
        fer2013.load(path)


def test_empty_class_folder(tmp_path, records):
    root = write_image_folder(tmp_path / "fer", [r for r in records if r[1] != "disgust"])
    (root / "train" / "disgust").mkdir()
    (root / "train" / "disgust" / "notes.txt").write_text("nothing here")
    with pytest.raises(DataFormatError, match=r"train/disgust is empty"):
        fer2013.load(root)


def test_missing_class_is_an_error(tmp_path, records):
    path = write_image_zip(tmp_path / "six.zip", [r for r in records if r[1] != "fear"])
    with pytest.raises(DataFormatError, match="fear have no training images"):
        fer2013.load(path)


def test_unknown_class_folder(tmp_path, records):
    path = write_image_zip(tmp_path / "x.zip", records)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("train/bored/Training_5000.png", jpeg(records[0][4]))
    with pytest.raises(DataFormatError, match="unknown class folder train/'bored'"):
        fer2013.load(path)


@pytest.mark.parametrize("member", ["../evil/train/happy/Training_1.png", "/etc/train/happy/Training_1.png",
                                    "train/../../x.png"])
def test_unsafe_zip_member_is_refused(tmp_path, records, member):
    path = write_image_zip(tmp_path / "evil.zip", records)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr(zipfile.ZipInfo(member), b"x")
    with pytest.raises(DataFormatError, match="refusing archive member"):
        fer2013.load(path)


@pytest.mark.parametrize("member", ["../fer2013.csv", "/tmp/fer2013.csv"])
def test_unsafe_tar_member_is_refused(tmp_path, records, member):
    path = write_tar(tmp_path / "fer2013.tar.gz", {member: csv_text(records).encode()})
    with pytest.raises(DataFormatError, match="refusing archive member"):
        ArchiveReader(path)


def test_sha256_mismatch_and_match(fer_zip):
    with pytest.raises(DataFormatError, match="sha256 mismatch"):
        verify_sha256(fer_zip, "0" * 64)
    verify_sha256(fer_zip, sha256_file(fer_zip))  # no error


def test_missing_data_lists_every_place_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("EMOREC_FER2013", raising=False)
    monkeypatch.delenv("KAGGLE_USERNAME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = {"path": None, "env_var": "EMOREC_FER2013", "search": ["nope/fer.zip"]}
    with pytest.raises(DataNotFoundError) as info:
        fetch("fer2013", cfg, tmp_path, tmp_path / "dl")
    message = str(info.value)
    for expected in ("no path configured", "$EMOREC_FER2013", "not set", "nope/fer.zip", "Kaggle",
                     "How to get FER2013"):
        assert expected in message
    # a path or variable the user set explicitly is not a place to search: it must exist
    monkeypatch.setenv("EMOREC_FER2013", str(tmp_path / "from_env.zip"))
    with pytest.raises(EmorecError, match="from_env.zip, which does not exist"):
        fetch("fer2013", cfg, tmp_path, tmp_path / "dl")


def test_search_order_prefers_configured_path(tmp_path, monkeypatch, records):
    configured = write_image_zip(tmp_path / "configured.zip", records[:0] + fer_records(1, seed=1))
    env = write_image_zip(tmp_path / "env.zip", records)
    monkeypatch.setenv("EMOREC_FER2013", str(env))
    cfg = {"path": str(configured), "env_var": "EMOREC_FER2013", "search": []}
    result = fetch("fer2013", cfg, tmp_path, tmp_path / "dl")
    assert result.source == configured and len(result.cache) == 21
    cfg["path"] = None
    assert fetch("fer2013", cfg, tmp_path, tmp_path / "dl").source == env


@pytest.mark.integration
@needs_shared()
def test_real_fer2013_has_the_published_counts():
    cache = fer2013.load(SHARED_FER)
    assert len(cache) == 35887
    for split, expected in fer2013.EXPECTED_COUNTS.items():
        assert cache.counts(split) == expected


def test_rgb_file_in_greyscale_dataset_is_converted_or_refused(tmp_path, records):
    path = write_image_zip(tmp_path / "rgb.zip", records)
    colour = np.dstack([records[0][4]] * 3)
    colour[..., 0] = 255
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("train/happy/Training_4242.png", jpeg(colour))
    cache = fer2013.load(path, {"channel_policy": "convert"})
    assert cache.images.shape[-1] == 1
    with pytest.raises(DataFormatError, match=r"Training_4242.png: RGB image where greyscale is expected"):
        fer2013.load(path, {"channel_policy": "refuse"})
