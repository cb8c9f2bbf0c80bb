"""RAF-DB (basic) adapter: the official layout (EmoLabel/list_patition_label.txt with
Image/aligned or Image/original) and the common Kaggle layout
(DATASET/{train,test}/<1..7>/*.jpg with train_labels.csv / test_labels.csv).

RAF-DB images are licensed per request from the authors; only the label file is public.
"""

from __future__ import annotations

import csv
import re
import sys
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from emorec.data.adapters import ADAPTERS
from emorec.data.adapters.base import DatasetCache, FaceCollector
from emorec.data.adapters.sources import ArchiveReader
from emorec.errors import DataFormatError
from emorec.labels import BASIC_EMOTIONS

NAME = "rafdb"
CLASSES = BASIC_EMOTIONS
# RAF-DB's own ids 1..7.
RAF_LABELS = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral"}
PAPER_TEST_SPLITS = ("test",)
LABEL_FILE = "EmoLabel/list_patition_label.txt"
HOW_TO_GET = (
    "How to get RAF-DB: its images are licensed per request from the authors "
    "(http://www.whdeng.cn/RAF/model1.html). Put the 'basic' folder (or its zip) somewhere and "
    "set fetch.rafdb.path in params.yaml or the EMOREC_RAFDB environment variable to it; it "
    "must hold EmoLabel/list_patition_label.txt and Image/aligned/*_aligned.jpg. The Kaggle "
    "layout DATASET/{train,test}/<1..7>/ with train_labels.csv / test_labels.csv also works."
)
EXPECTED_COUNTS = {
    "train": {"angry": 705, "disgust": 717, "fear": 281, "happy": 4772, "sad": 1982,
              "surprise": 1290, "neutral": 2524},
    "test": {"angry": 162, "disgust": 160, "fear": 74, "happy": 1185, "sad": 478,
             "surprise": 329, "neutral": 680},
}
_KAGGLE_RE = re.compile(r"(?:^|/)(train|test)/([^/]+)/([^/]+\.(?:jpe?g|png))$", re.IGNORECASE)
_LINE_RE = re.compile(r"^(train|test)_(\d+)\.(jpg|png)$", re.IGNORECASE)


def classes(cfg: dict) -> tuple[str, ...]:
    return CLASSES


def image_spec(cfg: dict) -> tuple[int, int]:
    return int(cfg.get("image_size") or 100), 3


def expected_counts(cfg: dict) -> dict | None:
    return EXPECTED_COUNTS if cfg.get("check_counts", True) else None


def parse_label_file(lines, where: str) -> list[tuple[str, str, str]]:
    """[(file name, split, class)] from list_patition_label.txt lines (LF or CRLF)."""
    out = []
    for line_no, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise DataFormatError(f"{where}, line {line_no}: expected '<file> <label>', got {line!r}")
        name, label = parts
        match = _LINE_RE.match(name)
        if not match:
            raise DataFormatError(f"{where}, line {line_no}: file name {name!r} is not "
                                  "train_<n>.jpg or test_<n>.jpg")
        try:
            cls = RAF_LABELS[int(label)]
        except (ValueError, KeyError):
            raise DataFormatError(f"{where}, line {line_no}: unknown label {label!r} for {name} "
                                  "(RAF-DB basic labels are 1..7)") from None
        out.append((name, match.group(1).lower(), cls))
    if not out:
        raise DataFormatError(f"{where}: label file is empty")
    return out


def load(path: Path, cfg: dict | None = None) -> DatasetCache:
    cfg = cfg or {}
    size, channels = image_spec(cfg)
    with ArchiveReader(path, (cfg or {}).get("limits")) as archive:
        names = archive.names()
        label_files = [n for n in names if n.endswith(LABEL_FILE) or n == LABEL_FILE.split("/")[-1]]
        if label_files:
            cache = _load_official(archive, names, label_files[0], cfg, size, channels)
        elif any(_KAGGLE_RE.search(n) for n in names):
            cache = _load_kaggle(archive, names, cfg, size, channels)
        else:
            raise DataFormatError(f"{path}: no {LABEL_FILE} and no Kaggle-style "
                                  "train/<1..7>/ folders inside")
    cache.meta.update({"dataset": cfg.get("name", NAME), "source": str(path), "image_size": size,
                       "channels": channels})
    return cache


def _load_official(archive, names, label_member, cfg, size, channels) -> DatasetCache:
    where = f"{archive.path}:{label_member}"
    text = archive.read(label_member).decode("utf-8-sig")
    entries = parse_label_file(text.splitlines(), where)
    base = str(PurePosixPath(label_member).parent.parent)
    base = "" if base == "." else base + "/"
    image_set = cfg.get("image_set", "aligned")
    available = set(names)
    faces = FaceCollector(CLASSES, cfg, size, channels)
    for name, split, cls in tqdm(entries, desc="decode RAF-DB", unit="img", mininterval=2):
        if faces.full(split, cls):
            continue
        stem = name.rsplit(".", 1)[0]
        member = (f"{base}Image/aligned/{stem}_aligned.jpg" if image_set == "aligned"
                  else f"{base}Image/original/{name}")
        if member not in available:
            raise DataFormatError(f"{where}: image for {name} missing: {member} not found in "
                                  f"{archive.path}")
        faces.add(archive.read(member), member, f"{archive.path}:{member}", split, cls)
    return faces.cache(str(archive.path), {"layout": f"official-{image_set}"})


def _kaggle_labels(archive, names) -> dict[tuple[str, str], str]:
    """(split, file name) -> class from train_labels.csv / test_labels.csv, where present."""
    labels = {}
    for member in names:
        base = member.rsplit("/", 1)[-1].lower()
        if base not in ("train_labels.csv", "test_labels.csv"):
            continue
        split = base.split("_")[0]
        reader = csv.reader(archive.open_text(member))
        header = [h.strip().lower() for h in next(reader, [])]
        if header[:2] != ["image", "label"]:
            raise DataFormatError(f"{archive.path}:{member}: unexpected columns {header}; "
                                  "expected image,label")
        for line_no, row in enumerate(reader, start=2):
            if not row:
                continue
            try:
                labels[(split, row[0].strip())] = RAF_LABELS[int(row[1])]
            except (ValueError, KeyError, IndexError):
                raise DataFormatError(f"{archive.path}:{member}, line {line_no}: unknown label "
                                      f"{row[1:2]} (RAF-DB labels are 1..7)") from None
    return labels


def _load_kaggle(archive, names, cfg, size, channels) -> DatasetCache:
    csv_labels = _kaggle_labels(archive, names)
    faces = FaceCollector(CLASSES, cfg, size, channels)
    for member in tqdm(sorted(names), desc="decode RAF-DB", unit="img", mininterval=2):
        match = _KAGGLE_RE.search(member)
        if not match:
            continue
        split, folder, file_name = match.group(1).lower(), match.group(2), match.group(3)
        try:
            cls = RAF_LABELS[int(folder)]
        except (ValueError, KeyError):
            raise DataFormatError(f"{archive.path}: unknown class folder {split}/{folder!r} "
                                  "(RAF-DB folders are 1..7)") from None
        if csv_labels and csv_labels.get((split, file_name), cls) != cls:
            raise DataFormatError(f"{archive.path}: {member} is in folder {folder} but "
                                  f"{split}_labels.csv says {csv_labels[(split, file_name)]}")
        if faces.full(split, cls):
            continue
        faces.add(archive.read(member), member, f"{archive.path}:{member}", split, cls)
    return faces.cache(str(archive.path), {"layout": "kaggle"})


ADAPTERS.register(NAME, sys.modules[__name__])
