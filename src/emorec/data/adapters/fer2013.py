"""FER2013 adapter: the Kaggle image release (zip or folder) and the original CSV
(`fer2013.csv`, `.csv.gz`, or the `fer2013.tar.gz` that holds it)."""

from __future__ import annotations

import csv
import gzip
import io as _io
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from emorec.data.adapters import ADAPTERS
from emorec.data.adapters.base import DatasetCache, stack_images
from emorec.data.adapters.imaging import decode
from emorec.data.adapters.sources import ArchiveReader
from emorec.errors import DataFormatError
from emorec.labels import BASIC_EMOTIONS, canonical

NAME = "fer2013"
CLASSES = BASIC_EMOTIONS  # CSV ids 0..6 are exactly this order
IMAGE_SIZE = 48
CHANNELS = 1
USAGE_TO_SPLIT = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
# The Kaggle image release puts PublicTest and PrivateTest together in test/; the paper
# evaluated on that folder, so its protocol tests on both official splits.
PAPER_TEST_SPLITS = ("val", "test")
KAGGLE_SLUG = "msambare/fer2013"
HOW_TO_GET = (
    "How to get FER2013: download the Kaggle image release 'msambare/fer2013' (a zip with "
    "train/<class>/Training_<id>.jpg and test/<class>/{PublicTest,PrivateTest}_<id>.jpg) or "
    "the original competition's fer2013.csv / fer2013.tar.gz, then set fetch.fer2013.path in "
    "params.yaml or the EMOREC_FER2013 environment variable to the file or folder. With Kaggle "
    "credentials and `pip install kaggle` the fetch stage downloads it itself."
)
# Known counts of the complete dataset, per official split (../shared/README.md).
EXPECTED_COUNTS = {
    "train": dict(zip(CLASSES, (3995, 436, 4097, 7215, 4830, 3171, 4965))),
    "val": dict(zip(CLASSES, (467, 56, 496, 895, 653, 415, 607))),
    "test": dict(zip(CLASSES, (491, 55, 528, 879, 594, 416, 626))),
}

_IMAGE_RE = re.compile(
    r"(?:^|/)(train|test)/([^/]+)/(Training|PublicTest|PrivateTest)_(\d+)\.(jpe?g|png)$",
    re.IGNORECASE,
)
_CSV_COLUMNS = ("emotion", "pixels", "Usage")


def classes(cfg: dict) -> tuple[str, ...]:
    return CLASSES


def image_spec(cfg: dict) -> tuple[int, int]:
    return IMAGE_SIZE, CHANNELS


def expected_counts(cfg: dict) -> dict | None:
    return EXPECTED_COUNTS if cfg.get("check_counts", True) else None


def load(path: Path, cfg: dict | None = None) -> DatasetCache:
    """Load FER2013 from any supported form into a normalized cache."""
    cfg = cfg or {}
    max_per_class = cfg.get("max_per_class")
    name = path.name.lower()
    if path.is_file() and (name.endswith(".csv") or name.endswith(".csv.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8", newline="") as fh:
                cache = _load_csv(fh, str(path), max_per_class)
        except (OSError, EOFError, UnicodeDecodeError) as exc:
            raise DataFormatError(f"{path}: cannot read CSV ({exc})") from exc
    else:
        with ArchiveReader(path, (cfg or {}).get("limits")) as archive:
            names = archive.names()
            csvs = [n for n in names if n.lower().endswith("fer2013.csv")]
            if any(_IMAGE_RE.search(n) for n in names):
                cache = _load_images(archive, names, max_per_class, cfg.get("channel_policy", "convert"))
            elif csvs:
                cache = _load_csv(archive.open_text(csvs[0]), f"{path}:{csvs[0]}", max_per_class)
            else:
                raise DataFormatError(
                    f"{path}: neither FER2013 images (train/<class>/Training_<id>.jpg, "
                    "test/<class>/{PublicTest,PrivateTest}_<id>.jpg) nor a fer2013.csv inside"
                )
    cache.meta.update({"dataset": cfg.get("name", NAME), "source": str(path), "image_size": IMAGE_SIZE,
                       "channels": CHANNELS, "max_per_class": max_per_class})
    return cache


def _load_images(archive: ArchiveReader, names: list[str], max_per_class: int | None,
                 channel_policy: str = "convert") -> DatasetCache:
    groups: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    class_dirs: dict[tuple[str, str], int] = defaultdict(int)
    for member in names:
        match = _IMAGE_RE.search(member)
        if not match:
            # A class folder that holds only non-image files still counts as present.
            parts = member.split("/")
            if len(parts) >= 3 and parts[-3].lower() in ("train", "test"):
                class_dirs[(parts[-3].lower(), parts[-2])] += 0
            continue
        folder, class_name, usage, _, _ = match.groups()
        try:
            label = canonical(class_name)
        except KeyError:
            raise DataFormatError(
                f"{archive.path}: unknown class folder {folder}/{class_name!r} "
                f"(expected one of {', '.join(CLASSES)})"
            ) from None
        if label not in CLASSES:
            raise DataFormatError(f"{archive.path}: class {label!r} is not a FER2013 class")
        split = USAGE_TO_SPLIT[_usage_key(usage)]
        groups[(split, label)].append((member, usage))
        class_dirs[(folder.lower(), class_name)] += 1
    for (folder, class_name), count in class_dirs.items():
        if count == 0:
            raise DataFormatError(f"{archive.path}: class folder {folder}/{class_name} is empty")
    _check_no_empty_class(groups, archive.path)

    images, labels, splits, ids = [], [], [], []
    selected = []
    for (split, label), members in sorted(groups.items()):
        members = sorted(members)
        if max_per_class:
            members = members[:max_per_class]
        selected.extend((m, split, label) for m, _ in members)
    for member, split, label in tqdm(selected, desc="decode FER2013", unit="img", mininterval=2):
        images.append(decode(archive.read(member), f"{archive.path}:{member}", CHANNELS,
                             channel_policy))
        labels.append(CLASSES.index(label))
        splits.append(split)
        ids.append(member)
    return DatasetCache(stack_images(images, str(archive.path)), np.array(labels, np.int64),
                        np.array(splits), np.array(ids), CLASSES, {"layout": "kaggle-images"})


def _usage_key(usage: str) -> str:
    for key in USAGE_TO_SPLIT:
        if key.lower() == usage.lower():
            return key
    raise KeyError(usage)


def _rows(reader, where: str):
    """The CSV's rows; a malformed one (a stray quote runs a field on for megabytes) is named."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataFormatError(f"{where}, line {reader.line_num}: malformed CSV ({exc}); "
                                  "an unbalanced quote character?") from None
        yield row


def _load_csv(fh, where: str, max_per_class: int | None) -> DatasetCache:
    reader = csv.reader(fh)
    try:
        header = next(reader)
    except StopIteration:
        raise DataFormatError(f"{where}: empty CSV file") from None
    header = [h.strip() for h in header]
    if [h.lower() for h in header[:3]] != [c.lower() for c in _CSV_COLUMNS]:
        raise DataFormatError(
            f"{where}: unexpected CSV columns {header}; expected {list(_CSV_COLUMNS)}"
        )
    n_pixels = IMAGE_SIZE * IMAGE_SIZE
    images, labels, splits, ids = [], [], [], []
    taken: dict[tuple[str, int], int] = defaultdict(int)
    for line_no, row in enumerate(tqdm(_rows(reader, where), desc="parse fer2013.csv", unit="row",
                                       mininterval=2), start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) < 3:
            raise DataFormatError(f"{where}, line {line_no}: expected 3 columns, got {len(row)}")
        emotion, pixels, usage = row[0].strip(), row[1], row[2].strip()
        try:
            label = int(emotion)
        except ValueError:
            raise DataFormatError(f"{where}, line {line_no}: emotion {emotion!r} is not an integer") from None
        if not 0 <= label < len(CLASSES):
            raise DataFormatError(
                f"{where}, line {line_no}: emotion {label} is outside 0..{len(CLASSES) - 1} "
                f"({', '.join(f'{i}={c}' for i, c in enumerate(CLASSES))})"
            )
        try:
            split = USAGE_TO_SPLIT[_usage_key(usage)]
        except KeyError:
            raise DataFormatError(
                f"{where}, line {line_no}: Usage {usage!r} is not one of {', '.join(USAGE_TO_SPLIT)}"
            ) from None
        try:
            values = np.array(pixels.split(), dtype=np.int64)
        except ValueError:
            raise DataFormatError(f"{where}, line {line_no}: pixels contain a non-integer value") from None
        if values.size != n_pixels:
            raise DataFormatError(
                f"{where}, line {line_no}: {values.size} pixel values, expected {n_pixels} "
                f"({IMAGE_SIZE}x{IMAGE_SIZE})"
            )
        if values.min() < 0 or values.max() > 255:
            raise DataFormatError(f"{where}, line {line_no}: pixel values outside 0..255")
        if max_per_class and taken[(split, label)] >= max_per_class:
            continue
        taken[(split, label)] += 1
        images.append(values.reshape(IMAGE_SIZE, IMAGE_SIZE, 1).astype(np.uint8))
        labels.append(label)
        splits.append(split)
        ids.append(f"csv:line{line_no}")
    groups = {(s, CLASSES[lab]): [None] * n for (s, lab), n in taken.items()}
    _check_no_empty_class(groups, where)
    return DatasetCache(stack_images(images, where), np.array(labels, np.int64), np.array(splits),
                        np.array(ids), CLASSES, {"layout": "csv"})


def _check_no_empty_class(groups: dict, where) -> None:
    present = {label for (split, label), members in groups.items() if split == "train" and members}
    missing = [c for c in CLASSES if c not in present]
    if missing:
        raise DataFormatError(
            f"{where}: class(es) {', '.join(missing)} have no training images; "
            "FER2013 needs all seven classes"
        )


def csv_bytes_from_cache(cache: DatasetCache) -> bytes:
    """Render a cache as the original CSV format (used by tests and for export)."""
    out = _io.StringIO()
    writer = csv.writer(out)
    writer.writerow(_CSV_COLUMNS)
    inverse = {v: k for k, v in USAGE_TO_SPLIT.items()}
    for img, label, split in zip(cache.images, cache.labels, cache.split):
        writer.writerow([int(label), " ".join(map(str, img.reshape(-1))), inverse[str(split)]])
    return out.getvalue().encode()


ADAPTERS.register(NAME, sys.modules[__name__])
