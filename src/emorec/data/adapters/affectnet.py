"""AffectNet adapter: the official release (Manually_Annotated_Images/ with training.csv
and validation.csv, faces cropped with the given box) and class-folder layouts
({train,valid|val,test}/<class>/*). AffectNet-8 keeps contempt; AffectNet-7 drops it."""

from __future__ import annotations

import csv
import re
import sys
from collections import Counter
from pathlib import Path

from tqdm import tqdm

from emorec.data.adapters import ADAPTERS
from emorec.data.adapters.base import DatasetCache, FaceCollector
from emorec.data.adapters.sources import ArchiveReader
from emorec.errors import DataFormatError
from emorec.labels import VOCABULARY, canonical

NAME = "affectnet"
# Official expression ids; 8, 9, 10 are none / uncertain / no-face and are dropped.
EXPRESSIONS = {0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust",
               6: "angry", 7: "contempt"}
DROPPED_EXPRESSIONS = {8: "none", 9: "uncertain", 10: "no-face"}
CSV_COLUMNS = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
               "facial_landmarks", "expression", "valence", "arousal"]
# Official training.csv is the training set; the official validation set is the test
# set every AffectNet paper reports on (the test set itself is not public).
CSV_SPLITS = {"training.csv": "train", "validation.csv": "test"}
FOLDER_SPLITS = {"train": "train", "training": "train", "valid": "val", "val": "val",
                 "validation": "val", "test": "test"}
PAPER_TEST_SPLITS = ("test",)
HOW_TO_GET = (
    "How to get AffectNet: request it from its authors (http://mohammadmahoor.com/affectnet/). "
    "Point fetch.affectnet.path in params.yaml or the EMOREC_AFFECTNET environment variable at "
    "the folder or zip holding Manually_Annotated_Images/ with training.csv and validation.csv, "
    "or at a class-folder copy ({train,valid,test}/<class>/*.jpg)."
)
_FOLDER_RE = re.compile(r"(?:^|/)(train|training|valid|val|validation|test)/([^/]+)/([^/]+\.(?:jpe?g|png))$",
                        re.IGNORECASE)


def classes(cfg: dict) -> tuple[str, ...]:
    n = int(cfg.get("variant", 8))
    if n not in (7, 8):
        raise DataFormatError(f"params.yaml: AffectNet variant must be 7 or 8, got {n}")
    return VOCABULARY[:n]


def image_spec(cfg: dict) -> tuple[int, int]:
    return int(cfg.get("image_size") or 96), 3


def expected_counts(cfg: dict) -> dict | None:
    """Counts configured in params (they depend on which copy of AffectNet one has)."""
    counts = cfg.get("expected_counts")
    if not counts:
        return None
    keep = set(classes(cfg))
    return {split: {canonical(c): n for c, n in per.items() if canonical(c) in keep}
            for split, per in counts.items()}


def load(path: Path, cfg: dict | None = None) -> DatasetCache:
    cfg = cfg or {}
    size, channels = image_spec(cfg)
    keep = classes(cfg)
    with ArchiveReader(path, (cfg or {}).get("limits")) as archive:
        names = archive.names()
        csvs = [n for n in names if n.rsplit("/", 1)[-1].lower() in CSV_SPLITS]
        if csvs:
            cache = _load_official(archive, names, csvs, cfg, keep, size, channels)
        elif any(_FOLDER_RE.search(n) for n in names):
            cache = _load_folders(archive, names, cfg, keep, size, channels)
        else:
            raise DataFormatError(f"{path}: neither training.csv/validation.csv nor "
                                  "{train,valid,test}/<class>/ folders inside")
    cache.meta.update({"dataset": cfg.get("name", NAME), "source": str(path), "image_size": size,
                       "channels": channels, "variant": len(keep)})
    return cache


def _load_folders(archive, names, cfg, keep, size, channels) -> DatasetCache:
    faces = FaceCollector(keep, cfg, size, channels)
    dropped: Counter = Counter()
    for member in tqdm(sorted(names), desc="decode AffectNet", unit="img", mininterval=2):
        match = _FOLDER_RE.search(member)
        if not match:
            continue
        split = FOLDER_SPLITS[match.group(1).lower()]
        try:
            cls = canonical(match.group(2))
        except KeyError:
            raise DataFormatError(f"{archive.path}: unknown class folder {match.group(1)}/"
                                  f"{match.group(2)!r} (expected one of {', '.join(keep)})") from None
        if cls not in keep:
            dropped[cls] += 1
            continue
        if faces.full(split, cls):
            continue
        faces.add(archive.read(member), member, f"{archive.path}:{member}", split, cls)
    return faces.cache(str(archive.path), {"layout": "class-folders", "dropped_classes": dict(dropped)})


def _load_official(archive, names, csvs, cfg, keep, size, channels) -> DatasetCache:
    marker = "Manually_Annotated_Images/"
    index = {n.split(marker, 1)[1]: n for n in names if marker in n}
    faces = FaceCollector(keep, cfg, size, channels)
    dropped: Counter = Counter()
    for csv_member in sorted(csvs):
        split = CSV_SPLITS[csv_member.rsplit("/", 1)[-1].lower()]
        where = f"{archive.path}:{csv_member}"
        reader = csv.reader(archive.open_text(csv_member))
        header = [h.strip() for h in next(reader, [])]
        if header != CSV_COLUMNS:
            raise DataFormatError(f"{where}: unexpected columns {header}; expected {CSV_COLUMNS}")
        for line_no, row in enumerate(tqdm(reader, desc=f"decode AffectNet {split}", unit="img",
                                           mininterval=2), start=2):
            if not row:
                continue
            if len(row) != len(CSV_COLUMNS):
                raise DataFormatError(f"{where}, line {line_no}: {len(row)} columns, expected "
                                      f"{len(CSV_COLUMNS)}")
            try:
                expression = int(row[6])
                box = tuple(int(float(v)) for v in row[1:5])
            except ValueError:
                raise DataFormatError(f"{where}, line {line_no}: non-numeric box or expression") from None
            if expression in DROPPED_EXPRESSIONS:
                dropped[DROPPED_EXPRESSIONS[expression]] += 1
                continue
            if expression not in EXPRESSIONS:
                raise DataFormatError(f"{where}, line {line_no}: unknown expression {expression} "
                                      "(AffectNet uses 0..10)")
            cls = EXPRESSIONS[expression]
            if cls not in keep:
                dropped[cls] += 1
                continue
            if faces.full(split, cls):
                continue
            member = index.get(row[0])
            if member is None:
                raise DataFormatError(f"{where}, line {line_no}: image {marker}{row[0]} not found")
            faces.add(archive.read(member), member, f"{archive.path}:{member}", split, cls,
                      box=box, box_where=f"{where}, line {line_no} ({row[0]})")
    return faces.cache(str(archive.path), {"layout": "official", "dropped": dict(dropped)})


ADAPTERS.register(NAME, sys.modules[__name__])
