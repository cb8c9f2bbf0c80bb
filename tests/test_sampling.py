"""train.source_prior: faces of a combined dataset weighted so that no source's class mix
can be learned as a prior (emorec.training.sampling)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import REPO

from emorec.data.augment import augmented_batches
from emorec.data.preprocess import InputSpec
from emorec.errors import EmorecError
from emorec.training import fit, sampling

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def _two_sources():
    # source a: 80 faces of class 0, 20 of class 1, 0 of class 2; source b: 10 / 30 / 60
    labels = np.array([0] * 80 + [1] * 20 + [0] * 10 + [1] * 30 + [2] * 60)
    sources = np.array(["a"] * 100 + ["b"] * 100)
    return labels, sources


def test_every_source_gets_the_union_class_mix_and_the_weights_average_one():
    labels, sources = _two_sources()
    w = sampling.source_weights(labels, sources, 3)
    union = np.bincount(labels, minlength=3) / len(labels)                 # 0.45 / 0.25 / 0.30
    for s in ("a", "b"):
        keep = sources == s
        mix = np.bincount(labels[keep], weights=w[keep], minlength=3) / w[keep].sum()
        if s == "a":    # a has no class-2 face: its other classes take the union's ratio between them
            np.testing.assert_allclose(mix[:2] / mix[:2].sum(), union[:2] / union[:2].sum(), rtol=1e-6)
        else:
            np.testing.assert_allclose(mix, union, rtol=1e-6)
    assert w.mean() == pytest.approx(1.0)
    assert w[0] / w[-1] == pytest.approx((0.45 / 0.8) / (0.30 / 0.60))
    one = sampling.source_weights(labels, np.array([""] * len(labels)), 3)
    assert np.all(one == 1.0)                                             # one source: nothing to hide


def test_bad_source_prior_settings_are_refused_by_name():
    labels, sources = _two_sources()
    assert sampling.training_weights(None, labels, None, 3, "run") is None
    with pytest.raises(EmorecError, match="train.source_prior: shared needs each training face's source"):
        sampling.training_weights("shared", labels, None, 3, "combined-cnn-plain")
    with pytest.raises(EmorecError, match="train.source_prior must be one of"):
        sampling.training_weights("flat", labels, sources, 3, "run")
    with pytest.raises(EmorecError, match="200 training labels but 3 face sources"):
        sampling.source_weights(labels, sources[:3], 3)
    cnn = PARAMS["models"]["cnn"]
    with pytest.raises(EmorecError, match="source_prior must be one of"):
        fit.TrainConfig.from_params({**PARAMS["train"], "source_prior": "uniform"}, cnn, 42)
    with pytest.raises(EmorecError, match="not with distribution"):
        fit.TrainConfig.from_params({**PARAMS["train"], "source_prior": "shared", "distribution": "data_parallel"},
                                    cnn, 42)
    cfg = fit.TrainConfig.from_params(PARAMS["train"], cnn, 42, "combined", "cpu",
                                      {"combined": {"source_prior": "shared"}})
    assert cfg.source_prior == "shared"


def test_augmented_batches_carry_each_face_weight():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (10, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(10) % 3
    weights = (np.arange(10) * 10).astype(np.float32)
    spec = InputSpec(size=8, channels=1, classes=("a", "b", "c"))
    plain = augmented_batches(images, labels, spec, 4, {"horizontal_flip": True}, seed=1)
    weighted = augmented_batches(images, labels, spec, 4, {"horizontal_flip": True}, seed=1, weights=weights)
    x, y = plain[0]
    xw, yw, w = weighted[0]
    np.testing.assert_array_equal(x, xw)                                  # same faces, same warps
    order = weighted.order[:4]
    np.testing.assert_array_equal(yw, labels[order])
    np.testing.assert_array_equal(w, weights[order])


@pytest.mark.parametrize("online", [None, {"horizontal_flip": True}])
def test_training_hands_keras_each_face_weight(tmp_path, monkeypatch, online):
    """fit.train -> Keras' fit: the weights reach it, for arrays (sample_weight) and for the
    host-side augmented batches (a third element), in the order of the faces it trains on."""
    import keras

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    from emorec.experiments import tracking

    experiment = tracking.configure(tmp_path, "sampling-test")
    labels, sources = _two_sources()
    images = np.random.default_rng(0).integers(0, 255, (len(labels), 16, 16, 1), dtype=np.uint8)
    expected = sampling.source_weights(labels, sources, 3)
    seen = {}
    real_fit = keras.Model.fit

    def spy(self, x=None, y=None, **kwargs):
        if isinstance(x, keras.utils.PyDataset):
            batch = x[0]
            seen["pairs"] = list(zip(batch[1].tolist(), batch[2].tolist())) if len(batch) == 3 else None
        else:
            w = kwargs.get("sample_weight")
            seen["pairs"] = None if w is None else list(zip(np.asarray(y).tolist(), np.asarray(w).tolist()))
        return real_fit(self, x, y, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    cnn = {**PARAMS["models"]["cnn"], "arch": {"filters": [4], "convs_per_block": 1, "dense_units": 8}}
    for prior in (None, "shared"):
        cfg = fit.TrainConfig.from_params({**PARAMS["train"], "epochs": 1, "batch_size": 64,
                                           "early_stopping_patience": None, "online_augmentation": online,
                                           "source_prior": prior}, cnn, 0)
        cfg.verbose = 0
        fit.train(model_name="cnn", arch=fit.model_arch(cnn), cfg=cfg, train_images=images, train_labels=labels,
                  val_images=images[:20], val_labels=labels[:20], classes=("x", "y", "z"),
                  out_dir=tmp_path / f"model-{prior}", curves_dir=tmp_path / f"curves-{prior}",
                  run_name=f"prior-{prior}", experiment_id=experiment, log_params={}, tags={},
                  train_sources=sources)
        if prior is None:
            assert seen["pairs"] is None
            continue
        by_label = {(int(y), round(float(w), 5)) for y, w in seen["pairs"]}
        allowed = {(int(y), round(float(w), 5)) for y, w in zip(labels, expected)}
        assert by_label <= allowed and len({w for _, w in by_label}) > 1


def test_part_sources_reads_each_face_source_and_treats_a_part_without_ids_as_one_dataset(tmp_path):
    images = np.zeros((3, 16, 16, 1), np.uint8)
    np.savez(tmp_path / "train.npz", images=images, labels=np.array([0, 1, 0]),
             source_id=np.array(["fer2013:Training/angry/1.png", "affectnet:train/happy/2.jpg", "fer2013:x"]),
             classes=np.array(["a", "b"]))
    np.savez(tmp_path / "train_balanced.npz", images=images, labels=np.array([0, 1, 0]), classes=np.array(["a", "b"]))
    assert sampling.part_sources(tmp_path, "train", 3).tolist() == ["fer2013", "affectnet", "fer2013"]
    assert sampling.part_sources(tmp_path, "train_balanced", 3).tolist() == ["", "", ""]
