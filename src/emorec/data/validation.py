"""Data validation with Great Expectations 1.x.

Each image becomes one row of a metadata frame (split, label, shape, pixel spread,
content hash); expectations run on that frame and on a per-split class-count frame.
Critical expectations fail the stage; warning expectations are only reported.
Exact duplicates are found by content hash, within and across splits.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from emorec.data.adapters.base import SPLITS, DatasetCache

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


@dataclass
class ExpectationOutcome:
    suite: str
    expectation: str
    column: str
    success: bool
    details: str


@dataclass
class ValidationReport:
    dataset: str
    n_images: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    expected_counts: dict[str, dict[str, int]] | None = None
    duplicate_groups: list[dict] = field(default_factory=list)
    low_contrast_ids: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.suite == "critical" and not o.success]

    @property
    def warnings(self) -> list[ExpectationOutcome]:
        return [o for o in self.outcomes if o.suite == "warning" and not o.success]

    def duplicate_summary(self) -> dict:
        cross = [g for g in self.duplicate_groups if g["cross_split"]]
        return {
            "groups": len(self.duplicate_groups),
            "images_in_groups": int(sum(len(g["source_ids"]) for g in self.duplicate_groups)),
            "cross_split_groups": len(cross),
            "within_split_groups": len(self.duplicate_groups) - len(cross),
        }

    def to_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "n_images": self.n_images,
            "success": not self.failures,
            "failures": [o.__dict__ for o in self.failures],
            "warnings": [o.__dict__ for o in self.warnings],
            "expectations": [o.__dict__ for o in self.outcomes],
            "counts": self.counts,
            "expected_counts": self.expected_counts,
            "duplicates": self.duplicate_summary(),
            "duplicate_groups": self.duplicate_groups,
            "low_contrast_images": self.low_contrast_ids,
        }


def image_frame(cache: DatasetCache) -> pd.DataFrame:
    """One row per image: what the expectations look at."""
    flat = cache.images.reshape(len(cache), -1)
    hashes = [hashlib.sha1(row.tobytes()).hexdigest() for row in flat]
    return pd.DataFrame({
        "source_id": cache.source_id.astype(str),
        "split": cache.split.astype(str),
        "label": [cache.classes[i] if 0 <= i < len(cache.classes) else f"<invalid {i}>"
                  for i in cache.labels],
        "height": np.full(len(cache), cache.images.shape[1]),
        "width": np.full(len(cache), cache.images.shape[2]),
        "channels": np.full(len(cache), cache.images.shape[3]),
        "pixel_std": flat.std(axis=1).astype(float),
        "sha1": hashes,
    })


def find_duplicates(frame: pd.DataFrame) -> list[dict]:
    """Groups of byte-identical images, with the splits and labels they span."""
    groups = []
    for sha, rows in frame.groupby("sha1", sort=True):
        if len(rows) < 2:
            continue
        splits = sorted(set(rows["split"]))
        groups.append({
            "sha1": sha,
            "source_ids": rows["source_id"].tolist(),
            "splits": rows["split"].tolist(),
            "labels": rows["label"].tolist(),
            "cross_split": len(splits) > 1,
            "conflicting_labels": len(set(rows["label"])) > 1,
        })
    return groups


def validate(
    cache: DatasetCache,
    dataset: str,
    image_size: int,
    channels: int,
    expected_counts: dict[str, dict[str, int]] | None,
    duplicates_policy: str = "drop_from_train",
    min_pixel_std: float = 1.0,
) -> ValidationReport:
    import great_expectations as gx
    import great_expectations.expectations as gxe

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    frame = image_frame(cache)
    counts = {s: cache.counts(s) for s in SPLITS if (cache.split == s).any()}
    report = ValidationReport(dataset, len(cache), counts=counts, expected_counts=expected_counts)
    report.duplicate_groups = find_duplicates(frame)
    report.low_contrast_ids = frame.loc[frame["pixel_std"] < min_pixel_std, "source_id"].tolist()

    count_rows = []
    for split in SPLITS:
        for label in cache.classes:
            got = counts.get(split, {}).get(label, 0)
            exp = (expected_counts or {}).get(split, {}).get(label)
            count_rows.append({"split_class": f"{split}/{label}", "count": got,
                               "expected": got if exp is None else exp})
    count_frame = pd.DataFrame(count_rows)
    cross_split = pd.DataFrame({"cross_split_duplicate": [g["cross_split"]
                                                           for g in report.duplicate_groups]
                                or [False]})

    critical = [
        ("images", gxe.ExpectColumnValuesToBeInSet(column="label", value_set=list(cache.classes))),
        ("images", gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS))),
        ("images", gxe.ExpectColumnValuesToBeBetween(column="height", min_value=image_size,
                                                     max_value=image_size)),
        ("images", gxe.ExpectColumnValuesToBeBetween(column="width", min_value=image_size,
                                                     max_value=image_size)),
        ("images", gxe.ExpectColumnValuesToBeInSet(column="channels", value_set=[channels])),
        ("images", gxe.ExpectColumnValuesToBeUnique(column="source_id")),
        ("images", gxe.ExpectColumnValuesToNotBeNull(column="sha1")),
        ("counts", gxe.ExpectColumnPairValuesToBeEqual(column_A="count", column_B="expected")),
        ("counts", gxe.ExpectColumnValuesToBeBetween(column="count", min_value=0)),
    ]
    warning = [
        ("images", gxe.ExpectColumnValuesToBeBetween(column="pixel_std", min_value=min_pixel_std)),
        ("images", gxe.ExpectColumnValuesToBeUnique(column="sha1")),
    ]
    dup_expectation = ("cross", gxe.ExpectColumnValuesToBeInSet(column="cross_split_duplicate",
                                                               value_set=[False]))
    (critical if duplicates_policy == "fail" else warning).append(dup_expectation)

    context = gx.get_context(mode="ephemeral")
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    source = context.data_sources.add_pandas(name=f"{dataset}_source")
    frames = {"images": frame, "counts": count_frame, "cross": cross_split}
    batches = {}
    for key, df in frames.items():
        asset = source.add_dataframe_asset(name=f"{dataset}_{key}")
        definition = asset.add_batch_definition_whole_dataframe(f"{dataset}_{key}_all")
        batches[key] = definition.get_batch(batch_parameters={"dataframe": df})

    for suite_name, items in (("critical", critical), ("warning", warning)):
        for frame_key, expectation in items:
            result = batches[frame_key].validate(expectation, result_format="SUMMARY")
            report.outcomes.append(ExpectationOutcome(
                suite=suite_name,
                expectation=type(expectation).__name__,
                column=_columns_of(expectation),
                success=bool(result.success),
                details=_describe(result, frames[frame_key], expectation),
            ))
    return report


def _columns_of(expectation) -> str:
    if hasattr(expectation, "column"):
        return expectation.column
    return f"{getattr(expectation, 'column_A', '')},{getattr(expectation, 'column_B', '')}"


def _describe(result, frame: pd.DataFrame, expectation) -> str:
    res = result.result or {}
    if result.success:
        return "ok"
    n_bad = res.get("unexpected_count")
    sample = res.get("partial_unexpected_list") or []
    if isinstance(expectation, _pair_type()):
        bad = frame[frame["count"] != frame["expected"]]
        items = [f"{r.split_class}: {r['count']} (expected {r.expected})" for _, r in bad.iterrows()]
        return f"{len(items)} split/class counts differ: " + "; ".join(items[:12])
    column = getattr(expectation, "column", "")
    if column == "sha1":
        return f"{n_bad} images share their exact pixels with another image (groups listed below)"
    if column == "cross_split_duplicate":
        return f"{n_bad} of {len(frame)} duplicate groups span more than one split (listed below)"
    if column == "pixel_std":
        ids = frame.loc[frame["pixel_std"] < expectation.min_value, "source_id"].tolist()
        return f"{n_bad} near-blank images, e.g. {', '.join(ids[:3])}"
    shown = ", ".join(map(str, sample[:8]))
    return f"{n_bad} of {res.get('element_count', len(frame))} rows unexpected; e.g. {shown}"


def _pair_type():
    import great_expectations.expectations as gxe

    return gxe.ExpectColumnPairValuesToBeEqual


def markdown_summary(report: ValidationReport, duplicates_policy: str) -> str:
    d = report.to_dict()
    lines = [
        f"# Validation: {report.dataset}",
        "",
        f"Images: {report.n_images}. Result: **{'PASS' if d['success'] else 'FAIL'}** "
        f"({len(report.failures)} critical failure(s), {len(report.warnings)} warning(s)). "
        "Checked with Great Expectations on the normalized cache written by the fetch stage.",
        "",
        "| suite | expectation | column | result | details |",
        "|---|---|---|---|---|",
    ]
    for o in report.outcomes:
        mark = "pass" if o.success else ("FAIL" if o.suite == "critical" else "warn")
        lines.append(f"| {o.suite} | {o.expectation} | {o.column} | {mark} | "
                     f"{o.details.replace('|', '/')} |")
    lines += ["", "## Class counts per split", "",
              "| split | " + " | ".join(report.counts.get("train", {}).keys()) + " | total |",
              "|---" * (len(report.counts.get("train", {})) + 2) + "|"]
    for split, per_class in report.counts.items():
        cells = []
        for label, n in per_class.items():
            exp = (report.expected_counts or {}).get(split, {}).get(label)
            cells.append(f"{n}" if exp is None or exp == n else f"{n} (expected {exp})")
        lines.append(f"| {split} | " + " | ".join(cells) + f" | {sum(per_class.values())} |")
    dup = report.duplicate_summary()
    lines += [
        "",
        "## Exact duplicates (identical pixels)",
        "",
        f"{dup['groups']} groups holding {dup['images_in_groups']} images: "
        f"{dup['within_split_groups']} within one split, {dup['cross_split_groups']} across "
        f"splits. Policy for cross-split duplicates: `{duplicates_policy}` (applied by the "
        "prepare stage). Groups whose copies carry different labels: "
        f"{sum(g['conflicting_labels'] for g in report.duplicate_groups)}.",
        "",
    ]
    cross = [g for g in report.duplicate_groups if g["cross_split"]]
    if cross:
        lines += ["First cross-split groups (full list in the JSON report):", ""]
        for g in cross[:15]:
            members = ", ".join(f"{s}:{i} ({lab})" for s, i, lab in
                                zip(g["splits"], g["source_ids"], g["labels"]))
            lines.append(f"- {members}")
        lines.append("")
    lines += [f"Near-blank images (pixel std < 1): {len(report.low_contrast_ids)}"
              + (f", e.g. {', '.join(report.low_contrast_ids[:5])}" if report.low_contrast_ids else ""),
              ""]
    return "\n".join(lines)


def failure_message(report: ValidationReport, json_path: os.PathLike) -> str:
    lines = [f"validation of {report.dataset} failed ({len(report.failures)} expectation(s)); "
             f"full report: {json_path}"]
    for o in report.failures:
        lines.append(f"  - {o.expectation}({o.column}): {o.details}")
    return "\n".join(lines)


def duplicate_groups_by_split(groups: list[dict]) -> dict[str, list[dict]]:
    by_split: dict[str, list[dict]] = defaultdict(list)
    for g in groups:
        for s in set(g["splits"]):
            by_split[s].append(g)
    return by_split
