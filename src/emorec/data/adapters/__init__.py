"""Dataset adapters behind one interface.

A dataset is a block under `fetch:` in params.yaml; its `adapter` key (default: the
block's name) picks the module that reads it. An adapter is a module of this package that
ends with `ADAPTERS.register(NAME, sys.modules[__name__])`; it provides:
`HOW_TO_GET`, `PAPER_TEST_SPLITS`, `classes(cfg)`, `image_spec(cfg) -> (size, channels)`,
`expected_counts(cfg)` and `load(path, cfg) -> DatasetCache`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from emorec.data.adapters.base import SPLITS, DatasetCache
from emorec.data.adapters.sources import find_source, kaggle_download, verify_sha256
from emorec.errors import DataNotFoundError, EmorecError
from emorec.registries import Registry

__all__ = ["ADAPTERS", "DatasetCache", "SPLITS", "adapter", "adapter_for", "available", "fetch", "locate"]

ADAPTERS: Registry[ModuleType] = Registry("dataset adapter", __name__, skip=("base", "imaging", "sources"))


def available() -> list[str]:
    return ADAPTERS.available()


def adapter(name: str) -> ModuleType:
    return ADAPTERS.get(name)


def adapter_for(name: str, fetch_params: dict) -> ModuleType:
    """The adapter of dataset `name`, given the whole `fetch:` params block."""
    if name not in fetch_params:
        raise EmorecError(f"unknown dataset {name!r} in params.yaml: no fetch.{name} block "
                          f"(configured datasets: {', '.join(sorted(fetch_params))})")
    return adapter(fetch_params[name].get("adapter", name))


def locate(name: str, cfg: dict, root: Path) -> Path | None:
    """Where dataset `name` would be read from (no download), or None when it is absent."""
    mod = adapter(cfg.get("adapter", name))
    try:
        return find_source(name, configured=cfg.get("path"), env_var=cfg.get("env_var"),
                           fallbacks=[p for p in cfg.get("search", []) if p],
                           how_to_get=mod.HOW_TO_GET, root=root)[0]
    except DataNotFoundError:
        return None


@dataclass
class FetchResult:
    cache: DatasetCache
    source: Path
    found_via: str


def fetch(name: str, cfg: dict, root: Path, download_dir: Path, limits: dict | None = None) -> FetchResult:
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
    verify_sha256(path, cfg.get("sha256"), f"params.yaml fetch.{name}.sha256")
    cache = mod.load(path, {**cfg, "name": name, "limits": limits})
    cache.meta["found_via"] = found_via
    return FetchResult(cache, path, found_via)
