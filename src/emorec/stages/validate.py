"""DVC stage `validate@<dataset>`: Great Expectations checks and the duplicate report."""

from __future__ import annotations

from pathlib import Path

from emorec import files
from emorec.config import Paths, load_params, project_root, section
from emorec.data.adapters import DatasetCache, adapter_for
from emorec.errors import EmorecError


def expected_counts(mod, cfg: dict) -> dict | None:
    """The adapter's known counts, capped at max_per_class for subset runs."""
    known = mod.expected_counts(cfg)
    max_per_class = cfg.get("max_per_class")
    if known is None:
        return None
    if max_per_class:
        return {s: {c: min(n, max_per_class) for c, n in per.items()} for s, per in known.items()}
    return known


def run(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    from emorec.data import validation

    params = params or load_params()
    paths = Paths(root or project_root())
    mod = adapter_for(dataset, section(params, "fetch"))
    fetch_cfg = section(params, "fetch", dataset)
    cfg = section(params, "validate")
    cache = DatasetCache.load(paths.cache(dataset))
    json_path = paths.validation_report(dataset)
    if cache.meta.get("missing"):
        reason = cache.meta["missing"]
        files.write_json(json_path, {"dataset": dataset, "skipped": reason, "success": None,
                                  "duplicate_groups": []})
        files.write_text(json_path.with_suffix(".md"), f"# Validation: {dataset}\n\nNot run: {reason}\n")
        print(f"{dataset}: skipped ({reason.splitlines()[0]})")
        return json_path
    size, channels = mod.image_spec(fetch_cfg)
    report = validation.validate(
        cache, dataset, image_size=size, channels=channels,
        expected_counts=expected_counts(mod, fetch_cfg),
        duplicates_policy=cfg["duplicates"], min_pixel_std=cfg.get("min_pixel_std", 1.0))
    files.write_json(json_path, report.to_dict())
    files.write_text(json_path.with_suffix(".md"), validation.markdown_summary(report, cfg["duplicates"]))
    dup = report.duplicate_summary()
    print(f"{dataset}: {len(report.outcomes)} expectations, {len(report.failures)} failed, "
          f"{len(report.warnings)} warnings; {dup['groups']} duplicate groups "
          f"({dup['cross_split_groups']} across splits) -> {json_path.relative_to(paths.root)}")
    if report.failures:
        raise EmorecError(validation.failure_message(report, json_path))
    return json_path
