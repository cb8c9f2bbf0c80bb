"""What lets a killed training resume: its work folder (kept only while the settings and
data it was started with still hold), the epochs Keras' BackupAndRestore saved there, and
the epoch log, cut back to those epochs."""

from __future__ import annotations

from pathlib import Path

from emorec import files


class History:
    """What Keras' History gives, rebuilt from the epoch log (it spans a resume)."""

    def __init__(self, history: dict):
        self.history = history


def work_folder(work_dir: Path | None, run_name: str, key: str) -> tuple[Path, dict | None]:
    """(folder, what a killed run left there) when its settings and data match `key`;
    a folder left by other settings is cleared. Without `work_dir`, a fresh temp folder."""
    import shutil
    import tempfile

    if work_dir is None:
        return Path(tempfile.mkdtemp(prefix=f"emorec-{run_name}-")), None
    work_dir = Path(work_dir)
    state = work_dir / "resume.json"
    if state.exists():
        try:
            left = files.read_json(state)
        except Exception:  # a damaged state file: start over
            left = {}
        if left.get("key") == key:
            return work_dir, left
    shutil.rmtree(work_dir, ignore_errors=True)
    work_dir.mkdir(parents=True)
    return work_dir, None


def finished_epochs(work: Path) -> int:
    """Epochs BackupAndRestore has saved in `work` (0: none)."""
    meta = work / "backup" / "training_metadata.json"
    try:
        return int(files.read_json(meta).get("epoch", 0)) if meta.exists() else 0
    except Exception:
        return 0


def read_history(path: Path) -> dict:
    import csv

    if not path.exists():
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


def truncate_history(path: Path, epochs: int) -> None:
    """Keep the log's first `epochs` rows: an epoch logged after the last backup is re-run."""
    if not path.exists():
        return
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1 + epochs]))
