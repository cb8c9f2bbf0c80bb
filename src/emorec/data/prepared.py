"""The prepared-data format: one folder per grid dataset (`data/prepared/<name>/`) holding
`train.npz`, `train_balanced.npz`, `val.npz` and `test.npz` (uint8 images, int labels,
class names), or a `missing.json` that says why an optional dataset has no data."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files
from emorec.errors import EmorecError

MISSING_MARKER = "missing.json"


def missing_reason(folder: Path) -> str | None:
    marker = folder / MISSING_MARKER
    return files.read_json(marker)["reason"] if marker.exists() else None


def write_placeholders(reason: str, pngs: list[Path] = (), texts: dict[Path, str] | None = None) -> None:
    """Outputs of a stage whose optional dataset is absent: they say so instead of a crash."""
    from emorec.reporting import plots

    for png in pngs:
        plots.message_figure(png, reason)
    for path, text in (texts or {}).items():
        files.write_text(path, text)


def load_part(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images, labels, class names) of one part; a clear message when it is absent."""
    path = folder / f"{name}.npz"
    if not path.exists():
        reason = missing_reason(folder)
        raise EmorecError(f"{path}: prepared data missing; "
                          + (reason if reason else "run the prepare stage first"))
    data = files.load_npz(path)
    return data["images"], data["labels"], tuple(str(c) for c in data["classes"])


def train_part(balance: str) -> str:
    return "train_balanced" if balance == "balanced" else "train"


def load_ids(folder: Path, name: str) -> np.ndarray | None:
    """Each face's source file name (split, class, id) in the part, or None if not recorded."""
    with np.load(folder / f"{name}.npz", allow_pickle=False) as data:     # the ids only, not the images again
        return data["source_id"] if "source_id" in data.files else None
