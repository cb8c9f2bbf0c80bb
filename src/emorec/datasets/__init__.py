"""Dataset adapters behind one interface: `fetch(name, params)` finds the data, loads it
with the dataset's adapter and returns a normalized `DatasetCache`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from emorec.datasets.base import SPLITS, DatasetCache
from emorec.datasets.sources import find_source, kaggle_download, verify_sha256
from emorec.errors import EmorecError

__all__ = ["DatasetCache", "SPLITS", "adapter", "available", "fetch"]


def _adapters() -> dict[str, ModuleType]:
    from emorec.datasets import fer2013

    return {fer2013.NAME: fer2013}


def available() -> list[str]:
    return sorted(_adapters())


def adapter(name: str) -> ModuleType:
    try:
        return _adapters()[name]
    except KeyError:
        raise EmorecError(
            f"unknown dataset {name!r} in params.yaml; known datasets: {', '.join(available())}"
        ) from None


@dataclass
class FetchResult:
    cache: DatasetCache
    source: Path
    found_via: str


def fetch(name: str, cfg: dict, root: Path, download_dir: Path) -> FetchResult:
    """Find dataset `name` per its fetch params, verify it and load it."""
    mod = adapter(name)
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
    cache = mod.load(path, max_per_class=cfg.get("max_per_class"))
    cache.meta["found_via"] = found_via
    return FetchResult(cache, path, found_via)
