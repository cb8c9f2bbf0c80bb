"""Dataset adapters behind one interface.

A dataset is a block under `fetch:` in params.yaml; its `adapter` key (default: the
block's name) picks the module that reads it. Every adapter module provides:
`HOW_TO_GET`, `PAPER_TEST_SPLITS`, `classes(cfg)`, `image_spec(cfg) -> (size, channels)`,
`expected_counts(cfg)` and `load(path, cfg) -> DatasetCache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from emorec.datasets.base import SPLITS, DatasetCache
from emorec.datasets.sources import find_source, kaggle_download, verify_sha256
from emorec.errors import EmorecError

__all__ = ["DatasetCache", "SPLITS", "adapter", "adapter_for", "available", "fetch"]


def _adapters() -> dict[str, ModuleType]:
    from emorec.datasets import affectnet, fer2013, rafdb

    return {m.NAME: m for m in (fer2013, rafdb, affectnet)}


def available() -> list[str]:
    return sorted(_adapters())


def adapter(name: str) -> ModuleType:
    try:
        return _adapters()[name]
    except KeyError:
        raise EmorecError(
            f"unknown dataset adapter {name!r}; known adapters: {', '.join(available())}"
        ) from None


def adapter_for(name: str, fetch_params: dict) -> ModuleType:
    """The adapter of dataset `name`, given the whole `fetch:` params block."""
    if name not in fetch_params:
        raise EmorecError(f"unknown dataset {name!r} in params.yaml: no fetch.{name} block "
                          f"(configured datasets: {', '.join(sorted(fetch_params))})")
    return adapter(fetch_params[name].get("adapter", name))


@dataclass
class FetchResult:
    cache: DatasetCache
    source: Path
    found_via: str


def fetch(name: str, cfg: dict, root: Path, download_dir: Path) -> FetchResult:
    """Find dataset `name` per its fetch params, verify it and load it."""
    mod = adapter(cfg.get("adapter", name))
    slug = cfg.get("kaggle_dataset") or getattr(mod, "KAGGLE_SLUG", None)
    downloader = (lambda: kaggle_download(slug, download_dir / name)) if slug and cfg.get(
        "kaggle_download", True) else None
    path, found_via = find_source(
        name,
        configured=cfg.get("path"),
        env_var=cfg.get("env_var"),
        fallbacks=[p for p in cfg.get("search", []) if p],
        how_to_get=mod.HOW_TO_GET,
        downloader=downloader,
        root=root,
    )
    verify_sha256(path, cfg.get("sha256"))
    cache = mod.load(path, {**cfg, "name": name})
    cache.meta["found_via"] = found_via
    return FetchResult(cache, path, found_via)
