"""Split protocols, the cross-split duplicate policy and balancing by augmentation."""

from __future__ import annotations

import numpy as np
import pytest

from emorec.data import augment, split
from emorec.data.adapters.base import DatasetCache
from emorec.errors import EmorecError


def make_cache(n_per_class=(40, 10, 25), splits=("train", "val", "test")) -> DatasetCache:
    rng = np.random.default_rng(0)
    labels, split_col = [], []
    for s in splits:
        for label, n in enumerate(n_per_class):
            labels += [label] * n
            split_col += [s] * n
    n = len(labels)
    images = rng.integers(0, 256, (n, 8, 8, 1)).astype(np.uint8)
    return DatasetCache(images, np.array(labels), np.array(split_col),
                        np.array([f"img{i}" for i in range(n)]), ("a", "b", "c"))


def test_paper_protocol_is_stratified_85_15_and_seeded():
    cache = make_cache()
    train, val, test = split.make_splits(cache, "paper", 0.15, seed=1, paper_test_splits=("val", "test"))
    n_train_official = (cache.split == "train").sum()
    assert val.sum() == pytest.approx(0.15 * n_train_official, abs=1)
    assert not (train & val).any()
    assert (train | val).sum() == n_train_official
    assert test.sum() == (cache.split != "train").sum()
    fractions = np.bincount(cache.labels[val], minlength=3) / np.bincount(cache.labels[train | val])
    assert np.allclose(fractions, 0.15, atol=0.06)
    again = split.make_splits(cache, "paper", 0.15, seed=1)
    np.testing.assert_array_equal(train, again[0])


def test_canonical_protocol_uses_official_splits():
    cache = make_cache()
    train, val, test = split.make_splits(cache, "canonical", 0.15, seed=1)
    assert (cache.split[train] == "train").all() and (cache.split[val] == "val").all()
    assert (cache.split[test] == "test").all()


def test_unknown_protocol():
    with pytest.raises(EmorecError, match="unknown split protocol"):
        split.make_splits(make_cache(), "random", 0.15, 1)


def _duplicate_group(ids, splits):
    return {"source_ids": ids, "splits": splits, "labels": ["a"] * len(ids), "cross_split": True}


def test_duplicate_policy_drops_train_copies_of_eval_images():
    cache = make_cache()
    masks = split.make_splits(cache, "canonical", 0.15, 1)
    groups = [_duplicate_group(["img0", "img80"], ["train", "val"]),  # leaks: drop img0
              _duplicate_group(["img1", "img2"], ["train", "train"])]  # within train: keep
    train, dropped = split.apply_duplicate_policy(cache, masks, groups, "drop_from_train")
    assert dropped == ["img0"]
    assert train.sum() == masks[0].sum() - 1
    kept, none = split.apply_duplicate_policy(cache, masks, groups, "report")
    assert none == [] and kept.sum() == masks[0].sum()
    with pytest.raises(EmorecError, match="1 duplicate group"):
        split.apply_duplicate_policy(cache, masks, groups, "fail")


def test_balance_reaches_target_and_is_deterministic():
    cache = make_cache()
    imgs, labels = cache.images[:75], cache.labels[:75]  # counts 40, 10, 25
    cfg = augment.AugmentConfig()
    out, out_labels, flags = augment.balance(imgs, labels, 3, "median", cfg, seed=3)
    assert np.bincount(out_labels).tolist() == [40, 25, 25]
    assert flags.sum() == 15 and not flags[:75].any()
    np.testing.assert_array_equal(out[:75], imgs)  # originals untouched
    again, _, _ = augment.balance(imgs, labels, 3, "median", cfg, seed=3)
    np.testing.assert_array_equal(out, again)
    _, max_labels, _ = augment.balance(imgs, labels, 3, "max", cfg, seed=3)
    assert np.bincount(max_labels).tolist() == [40, 40, 40]
    _, n_labels, _ = augment.balance(imgs, labels, 3, 30, cfg, seed=3)
    assert np.bincount(n_labels).tolist() == [40, 30, 30]


def test_balance_rejects_bad_targets_and_empty_classes():
    cache = make_cache()
    with pytest.raises(EmorecError, match="balance target"):
        augment.balance(cache.images, cache.labels, 3, "mean", augment.AugmentConfig(), 0)
    with pytest.raises(EmorecError, match="no training images"):
        augment.balance(cache.images, cache.labels, 4, "max", augment.AugmentConfig(), 0)


def test_augmentation_changes_images_but_keeps_shape_and_range():
    rng = np.random.default_rng(0)
    img = np.zeros((48, 48, 1), np.uint8)
    img[10:20, 5:15] = 255
    out = augment.augment_image(img, rng, augment.AugmentConfig(rotation_degrees=30))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert not np.array_equal(out, img)
    identity = augment.AugmentConfig(0, 0, 0, 0, 0, False)
    np.testing.assert_array_equal(augment.augment_image(img, rng, identity), img)


def test_unknown_augmentation_setting():
    with pytest.raises(EmorecError, match="unknown augmentation setting"):
        augment.AugmentConfig.from_params({"rotation": 10})


def test_train_overrides_apply_per_dataset():
    from emorec.training.fit import TrainConfig

    train, by_dataset = {"epochs": 30, "batch_size": 64}, {"affectnet_pca": {"epochs": 15}, "fer2013": None}
    model = {"optimizer": "rmsprop", "learning_rate": 0.001, "arch": {"filters": [8]}}
    assert TrainConfig.from_params(train, model, 1, "affectnet_pca", "cpu", by_dataset).epochs == 15
    assert TrainConfig.from_params(train, model, 1, "affectnet_pca", "gpu", by_dataset).epochs == 30
    assert TrainConfig.from_params(train, model, 1, "fer2013", "cpu", by_dataset).epochs == 30
    with pytest.raises(EmorecError, match="unknown training setting"):
        TrainConfig.from_params(train, model, 1, "fer2013", "cpu", {"fer2013": {"epoch": 3}})
    with pytest.raises(EmorecError, match="train_overrides.<dataset> as a mapping"):
        TrainConfig.from_params(train, model, 1, "fer2013", "cpu", {"fer2013": 3})
    with pytest.raises(EmorecError, match="train.overrides moved"):     # the old place is refused
        TrainConfig.from_params({**train, "overrides": {"fer2013": {"epochs": 3}}}, model, 1, "fer2013")
