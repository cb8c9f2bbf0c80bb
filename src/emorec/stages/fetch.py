"""DVC stage `fetch@<dataset>`: find the dataset, verify it, write its normalized cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec.config import Paths, load_params, project_root, section
from emorec.data.adapters import DatasetCache, adapter_for, fetch
from emorec.errors import DataNotFoundError


def run(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    params = params or load_params()
    paths = Paths(root or project_root())
    mod = adapter_for(dataset, section(params, "fetch"))
    cfg = section(params, "fetch", dataset)
    target = paths.cache(dataset)
    try:
        result = fetch(dataset, cfg, paths.root, paths.downloads(), params.get("limits"))
    except DataNotFoundError as exc:
        if not cfg.get("optional"):
            raise
        size, channels = mod.image_spec(cfg)
        empty = DatasetCache(np.zeros((0, size, size, channels), np.uint8), np.zeros(0, np.int64),
                             np.array([], str), np.array([], str), mod.classes(cfg),
                             {"dataset": dataset, "searched": str(exc),
                              "missing": f"needs the {dataset} data (not found; set fetch.{dataset}.path "
                                         f"or ${cfg.get('env_var') or 'its environment variable'})"})
        empty.save(target)
        print(f"{dataset}: optional dataset not found; later stages report it as missing.\n{exc}")
        return target
    result.cache.save(target)
    counts = {s: sum(result.cache.counts(s).values()) for s in ("train", "val", "test")}
    print(f"{dataset}: {len(result.cache)} images from {result.found_via} "
          f"(official splits: {counts}) -> {target.relative_to(paths.root)}")
    return target
