"""The runs that train here: the active profile's cells whose data is present.

A grid dataset whose data is absent (RAF-DB without its images) contributes no runs: the
report says once what it needs. `dvc.yaml` iterates over the runs that `emorec grid
--write` puts in `grid.yaml`, so `dvc status` and `dvc dag` list only real runs."""

from __future__ import annotations

from pathlib import Path

import yaml

from emorec import files
from emorec.config import section
from emorec.data.adapters import adapter_for, locate
from emorec.grid import Run, base_dataset, cells, profile

GRID_FILE = "grid.yaml"


def dataset_adapter(params: dict, dataset: str):
    return adapter_for(base_dataset(params, dataset), section(params, "fetch"))


def missing_data(params: dict, dataset: str, root: Path) -> str | None:
    """Why a grid dataset cannot train here (its optional data is absent), else None."""
    from emorec.grid import is_combined

    if is_combined(params, dataset):      # the combine stage says what it left out
        return None
    base = base_dataset(params, dataset)
    cfg = section(params, "fetch", base)
    if not cfg.get("optional"):
        return None
    if locate(base, cfg, root) is None:
        var = cfg.get("env_var") or "its environment variable"
        return f"needs the {base} data (not found; set fetch.{base}.path or ${var})"
    return None


def runs(params: dict, root: Path, name: str | None = None) -> tuple[list[Run], dict[str, str]]:
    """(the runs that train, {dataset: what it needs} for grid datasets left out)."""
    absent = {d: why for d in section(params, "grid", "datasets") if (why := missing_data(params, d, root))}
    return [r for r in cells(params, name) if r.dataset not in absent], absent


def grid_file_content(params: dict, root: Path, name: str | None = None) -> dict:
    name = name or profile(params)
    active, absent = runs(params, root, name)
    return {
        "profile": name,
        "runs": {r.name: {"dataset": r.dataset, "model": r.model, "balance": r.balance} for r in active},
        "trained_datasets": sorted({r.dataset for r in active}, key=[r.dataset for r in active].index),
        "absent": absent,
    }


def write_grid_file(params: dict, root: Path, name: str | None = None) -> Path:
    content = grid_file_content(params, root, name)
    header = ("# Written by `emorec grid` from params.yaml: the runs dvc.yaml trains (profile "
              f"{content['profile']}). Regenerate it after changing grid.*, grid.profile or a "
              "model's cpu.cells; do not edit by hand.\n")
    path = root / GRID_FILE
    files.write_text(path, header + yaml.safe_dump(content, sort_keys=False, width=120))
    return path


def not_trained(params: dict, root: Path, run: Run) -> str | None:
    """Why `run` has no model in this profile (for the studies that name runs), else None."""
    active, absent = runs(params, root)
    if run.dataset in absent:
        return absent[run.dataset]
    if run not in active:
        why = (((params.get("models") or {}).get(run.model) or {}).get(profile(params)) or {}).get("why")
        if why:
            return f"GPU profile: {why}"
        return (f"not a run of profile {profile(params)!r}"
                + ("; the full profile trains it (grid.profile: full)" if run in cells(params, "full") else ""))
    return None
