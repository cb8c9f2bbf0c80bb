"""Great Expectations validation: passes clean data, fails with a readable list otherwise."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_FER, needs_shared

from emorec.data import validation
from emorec.data.adapters import fer2013
from emorec.data.adapters.base import DatasetCache


def clean_cache(per=4) -> DatasetCache:
    rng = np.random.default_rng(0)
    n = 3 * 2 * per
    images = rng.integers(0, 256, (n, 48, 48, 1)).astype(np.uint8)
    labels = np.tile(np.repeat(np.arange(3), per), 2)
    splits = np.repeat(["train", "test"], 3 * per)
    return DatasetCache(images, labels, splits, np.array([f"f{i}.jpg" for i in range(n)]),
                        ("angry", "happy", "sad"))


def expected(cache):
    return {s: cache.counts(s) for s in ("train", "test")}


def test_clean_data_passes():
    cache = clean_cache()
    report = validation.validate(cache, "toy", 48, 1, expected(cache))
    assert report.failures == []
    assert report.duplicate_groups == []
    assert report.to_dict()["success"] is True


def test_wrong_counts_and_shape_fail_with_readable_details():
    cache = clean_cache()
    exp = expected(cache)
    exp["train"]["happy"] = 99
    report = validation.validate(cache, "toy", 64, 1, exp)
    failed = {(o.expectation, o.column) for o in report.failures}
    assert ("ExpectColumnValuesToBeBetween", "height") in failed
    assert ("ExpectColumnPairValuesToBeEqual", "count,expected") in failed
    message = validation.failure_message(report, "reports/validation/toy.json")
    assert "train/happy: 4 (expected 99)" in message


def test_duplicates_found_within_and_across_splits():
    cache = clean_cache()
    cache.images[1] = cache.images[0]  # within train
    cache.images[13] = cache.images[2]  # train and test, different label
    report = validation.validate(cache, "toy", 48, 1, expected(cache), duplicates_policy="report")
    summary = report.duplicate_summary()
    assert summary == {"groups": 2, "images_in_groups": 4, "cross_split_groups": 1,
                       "within_split_groups": 1}
    assert report.failures == []  # report policy: a warning, not a failure
    assert any(o.column == "cross_split_duplicate" for o in report.warnings)
    strict = validation.validate(cache, "toy", 48, 1, expected(cache), duplicates_policy="fail")
    assert any(o.column == "cross_split_duplicate" for o in strict.failures)
    md = validation.markdown_summary(report, "report")
    assert "2 groups holding 4 images" in md


def test_blank_images_are_reported():
    cache = clean_cache()
    cache.images[3] = 0
    report = validation.validate(cache, "toy", 48, 1, expected(cache))
    assert report.low_contrast_ids == ["f3.jpg"]


@pytest.mark.integration
@needs_shared()
def test_real_fer2013_validates_and_has_about_1500_duplicate_groups():
    cache = fer2013.load(SHARED_FER)
    report = validation.validate(cache, "fer2013", 48, 1, fer2013.EXPECTED_COUNTS)
    assert report.failures == []
    summary = report.duplicate_summary()
    assert 1400 <= summary["groups"] <= 1600
    assert summary["cross_split_groups"] > 0
