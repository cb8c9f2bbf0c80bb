"""The training recipe (in-graph augmentation, label smoothing, SGD-Nesterov, warm-up +
cosine to zero), the calibration tools, and the GPU profile's standalone runner."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from emorec.errors import EmorecError
from emorec.evaluation import calibration, scoring
from emorec.training import recipe, standalone
from emorec.training.fit import TrainConfig, model_arch

REPO = Path(__file__).resolve().parents[1]
SMALL_CNN = {"filters": (8, 16), "dense_units": 16, "conv_dropout": 0.0, "dense_dropout": 0.0}


def _bands(n=64, size=48, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.integers(0, 50, (n, size, size, 1)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 16 * c:16 * c + 16] = 230
    return x, y


# --- augmentation layers ---------------------------------------------------------------

def test_batch_augment_refuses_unknown_keys_and_bad_ranges():
    with pytest.raises(EmorecError, match="unknown key.*rotaton"):
        recipe.BatchAugment.from_params({"rotaton": 10})
    with pytest.raises(EmorecError, match="erasing is a probability"):
        recipe.BatchAugment.from_params({"erasing": 1.5})
    with pytest.raises(EmorecError, match="zoom must be"):
        recipe.BatchAugment.from_params({"zoom": -0.1})
    assert recipe.BatchAugment.from_params(None) is None


def test_augmentation_changes_training_batches_only():
    import keras

    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    cfg = recipe.BatchAugment.from_params({"horizontal_flip": True, "rotation_degrees": 10, "translation": 0.1,
                                           "zoom": 0.1, "erasing": 1.0, "downscale": 1.0, "brightness": 0.1,
                                           "contrast": 0.2, "noise": 0.05})
    wrapper = recipe.augmented(model, cfg, seed=1)
    x = np.random.default_rng(0).random((8, 48, 48, 1)).astype("float32")
    augmenters = keras.Sequential(wrapper.layers[1:-1])
    out_train = np.asarray(augmenters(x, training=True))
    out_infer = np.asarray(augmenters(x, training=False))
    assert out_train.shape == x.shape
    np.testing.assert_array_equal(out_infer, x)            # inference: identity
    assert np.abs(out_train - x).mean() > 0.02             # training: changed
    assert 0.0 <= out_train.min() and out_train.max() <= 1.0 + 1e-5
    assert wrapper.layers[-1] is model                     # the saved model is the classifier alone


def test_affine_warp_flips_exactly_and_keeps_an_identity_warp():
    RandomAffine = recipe.layer_classes()[0]
    x = np.random.default_rng(0).random((4, 12, 12, 1)).astype("float32")
    flip_only = RandomAffine(flip=True, seed=3)
    out = np.asarray(flip_only(x, training=True))
    for img, o in zip(x, out):                             # each image is itself or its mirror
        assert np.allclose(o, img, atol=1e-5) or np.allclose(o, img[:, ::-1], atol=1e-5)
    still = RandomAffine(flip=False, seed=3)
    np.testing.assert_allclose(np.asarray(still(x, training=True)), x, atol=1e-5)


def test_recipe_trains_a_small_cnn_and_label_smoothing_loads_in_safe_mode(tmp_path):
    import keras

    from emorec import models
    from emorec.models.loading import load_file
    from emorec.training.fit import compile_for

    x, y = _bands()
    cfg = TrainConfig.from_params({"epochs": 6, "batch_size": 16, "optimizer": "sgd_nesterov", "learning_rate": 0.05,
                                   "weight_decay": 5e-4, "lr_schedule": "cosine_to_zero", "warmup_epochs": 1,
                                   "label_smoothing": 0.1,
                                   "batch_augmentation": {"horizontal_flip": False, "translation": 0.05}},
                                  {}, seed=0)
    keras.utils.set_random_seed(0)
    model = models.build("cnn", (48, 48, 1), 3, **SMALL_CNN)
    wrapper = recipe.augmented(model, recipe.BatchAugment.from_params(cfg.batch_augmentation), 0)
    compile_for(wrapper, cfg, len(y))
    hist = wrapper.fit(x / 255.0, y, batch_size=16, epochs=cfg.epochs, verbose=0).history
    assert hist["loss"][-1] < hist["loss"][0]
    assert (model.predict(x / 255.0, verbose=0).argmax(1) == y).mean() > 0.6
    model.save(tmp_path / "classifier.keras")               # what the train stage saves: no random layers
    assert all("random" not in layer.name for layer in load_file(tmp_path / "classifier.keras").layers)
    compile_for(model, cfg, len(y))                         # compiled with the smoothed loss (no wrapper) ...
    model.fit(x / 255.0, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "compiled.keras")                 # ... its loss class is registered: safe mode loads it
    assert load_file(tmp_path / "compiled.keras").loss.label_smoothing == pytest.approx(0.1)


def test_weight_ema_is_what_validation_and_the_checkpoint_see(tmp_path):
    """With weight_ema, the best checkpoint holds the moving average of the weights, which
    differs from the raw weights the optimizer steps, and it is what validation scored."""
    import keras

    from emorec import models
    from emorec.models.optimizers import ema_callbacks
    from emorec.training.fit import compile_for

    x, y = _bands()
    cfg = TrainConfig.from_params({"epochs": 3, "batch_size": 16, "optimizer": "adam", "learning_rate": 0.01,
                                   "weight_ema": 0.9}, {}, seed=0)
    keras.utils.set_random_seed(0)
    model = models.build("cnn", (48, 48, 1), 3, **SMALL_CNN)
    compile_for(model, cfg, len(y))
    assert model.optimizer.use_ema and model.optimizer.ema_momentum == pytest.approx(0.9)
    saved = tmp_path / "best.weights.h5"
    seen = {}

    class Record(keras.callbacks.Callback):     # after the swap, like the checkpoint
        def on_epoch_end(self, epoch, logs=None):
            held = [v.numpy() for v in self.model.optimizer._model_variables_moving_average]   # raw, swapped out
            seen[epoch] = ([w.copy() for w in self.model.get_weights()], logs["val_accuracy"],
                           any(not np.allclose(h, t.numpy()) for h, t in zip(held, self.model.trainable_variables)))

    checkpoint = keras.callbacks.ModelCheckpoint(str(saved), save_weights_only=True)
    model.fit(x / 255.0, y, batch_size=16, epochs=cfg.epochs, validation_data=(x / 255.0, y), verbose=0,
              callbacks=[*ema_callbacks(cfg.weight_ema), checkpoint, Record()])
    # the average is not the raw weights (after the last epoch Keras makes them one)
    assert all(seen[epoch][2] for epoch in range(cfg.epochs - 1))
    fresh = models.build("cnn", (48, 48, 1), 3, **SMALL_CNN)
    fresh.load_weights(str(saved))
    last_seen, last_val, _ = seen[cfg.epochs - 1]
    assert all(np.allclose(a, b) for a, b in zip(fresh.get_weights(), last_seen))
    fresh.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert fresh.evaluate(x / 255.0, y, verbose=0)[1] == pytest.approx(last_val)
    assert ema_callbacks(None) == []


def test_batch_norm_is_reestimated_as_the_mean_of_batch_statistics():
    """Moving mean and variance become the average of the per-batch statistics (equal
    batches), whatever they held before; momentum is put back."""
    import keras

    from emorec.training.averaging import reestimate_batch_norm

    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (96, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization(momentum=0.9)])
    norm = model.layers[0]
    norm.moving_mean.assign(np.full(4, 50.0, "float32"))
    assert reestimate_batch_norm(model, x, batch_size=32) == 1
    batches = x.reshape(3, 32, 4)
    assert np.allclose(norm.moving_mean.numpy(), batches.mean(1).mean(0), atol=1e-4)
    assert np.allclose(norm.moving_variance.numpy(), batches.var(1).mean(0), atol=1e-3)
    assert norm.momentum == pytest.approx(0.9)
    assert reestimate_batch_norm(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]), x) == 0
    with pytest.raises(EmorecError, match="at least one training image"):
        reestimate_batch_norm(model, x[:0])


def test_weight_averaging_is_the_mean_of_the_last_epochs_and_what_the_checkpoint_judges(tmp_path):
    """swa_epochs=2 of 4: the kept weights are the mean of the raw weights after epochs 3 and
    4 (batch norm re-estimated), the last epoch's validation figures are the average's, and the
    rate is held at swa_rate x learning_rate after the decay. A run resumed after epoch 3
    continues the saved average."""
    import keras

    from emorec import models
    from emorec.training.averaging import batch_norm_layers, reestimate_batch_norm, swa_callback
    from emorec.training.fit import compile_for

    x, y = _bands()
    x = x / 255.0
    cfg = TrainConfig.from_params({"epochs": 4, "batch_size": 16, "optimizer": "adam", "learning_rate": 0.01,
                                   "lr_schedule": "cosine", "swa_epochs": 2, "swa_rate": 0.1}, {}, seed=0)
    keras.utils.set_random_seed(0)
    raw, seen = {}, {}

    class Raw(keras.callbacks.Callback):          # before the averaging callback: the optimizer's weights
        def on_epoch_end(self, epoch, logs=None):
            raw[epoch] = [v.numpy().copy() for v in self.model.trainable_variables]
            raw[f"val{epoch}"] = logs["val_accuracy"]

    class Seen(keras.callbacks.Callback):         # after it, where the checkpoint sits
        def on_epoch_end(self, epoch, logs=None):
            seen[epoch] = logs["val_accuracy"]

    def fresh_model():
        model = models.build("cnn", (48, 48, 1), 3, **SMALL_CNN)
        compile_for(model, cfg, len(y))
        return model

    model = fresh_model()
    averaging = swa_callback(cfg.epochs, cfg.swa_epochs, x, (x, y))
    model.fit(x, y, batch_size=16, epochs=cfg.epochs, validation_data=(x, y), verbose=0,
              callbacks=[Raw(), averaging, Seen()])
    assert averaging.applied and averaging.averaged_epochs == [2, 3]
    for kept, a, b in zip(model.trainable_variables, raw[2], raw[3]):
        assert np.allclose(kept.numpy(), (a + b) / 2, atol=1e-6)
    assert seen[3] == pytest.approx(model.evaluate(x, y, verbose=0, return_dict=True)["accuracy"])
    assert averaging.last_epoch_raw["val_accuracy"] == raw["val3"]     # the paired figure: epoch 4's own weights
    stats = [layer.moving_mean.numpy().copy() for layer in batch_norm_layers(model)]
    reestimate_batch_norm(model, x)                             # already re-estimated for these weights
    assert stats and all(np.allclose(a, layer.moving_mean.numpy(), atol=1e-5)
                         for a, layer in zip(stats, batch_norm_layers(model)))
    steps, schedule = int(np.ceil(len(y) / cfg.batch_size)), model.optimizer._learning_rate
    assert float(schedule(steps)) > 0.002                       # decaying over the first two epochs
    assert float(schedule(steps * 2)) == pytest.approx(0.001)   # then held at 0.1 x 0.01
    assert float(schedule(steps * 4)) == pytest.approx(0.001)
    tail = TrainConfig.from_params({**dataclasses.asdict(cfg), "swa_rate": None}, {}, seed=0)
    compile_for(model, tail, len(y))                            # no hold: the plain cosine, to 1 % at the end
    assert float(model.optimizer._learning_rate(steps * 2)) == pytest.approx(0.00505, rel=1e-3)
    assert float(model.optimizer._learning_rate(steps * 4)) == pytest.approx(0.0001)

    # killed after epoch 3 and resumed: the second callback loads the first's average from the file
    state = tmp_path / "swa.npz"
    model, raw = fresh_model(), {}
    first = swa_callback(cfg.epochs, cfg.swa_epochs, x, (x, y), state)
    model.fit(x, y, batch_size=16, epochs=3, validation_data=(x, y), verbose=0, callbacks=[Raw(), first])
    assert not first.applied and state.is_file()
    second = swa_callback(cfg.epochs, cfg.swa_epochs, x, (x, y), state)
    model.fit(x, y, batch_size=16, initial_epoch=3, epochs=4, validation_data=(x, y), verbose=0,
              callbacks=[Raw(), second])
    assert second.applied and second.averaged_epochs == [2, 3]
    for kept, a, b in zip(model.trainable_variables, raw[2], raw[3]):
        assert np.allclose(kept.numpy(), (a + b) / 2, atol=1e-6)


def test_train_config_recipe_checks():
    base = {"epochs": 2, "batch_size": 8, "optimizer": "sgd_nesterov", "learning_rate": 0.01}
    with pytest.raises(EmorecError, match="lr_schedule must be one of"):
        TrainConfig.from_params({**base, "lr_schedule": "linear"}, {}, 0)
    with pytest.raises(EmorecError, match="label_smoothing"):
        TrainConfig.from_params({**base, "label_smoothing": 0.7}, {}, 0)
    with pytest.raises(EmorecError, match="weight_ema"):
        TrainConfig.from_params({**base, "weight_ema": 1.0}, {}, 0)
    assert TrainConfig.from_params({**base, "swa_epochs": 1, "swa_rate": None}, {}, 0).swa_rate is None
    for bad in ({"swa_epochs": 2}, {"swa_epochs": 0}, {"swa_epochs": 1, "swa_rate": 0.0}):
        with pytest.raises(EmorecError, match="swa_epochs must be null or from 1 to epochs - 1"):
            TrainConfig.from_params({**base, **bad}, {}, 0)
    with pytest.raises(EmorecError, match="swa_epochs is not available with distribution"):
        TrainConfig.from_params({**base, "swa_epochs": 1, "distribution": "data_parallel"}, {}, 0)
    for clash in ({"weight_ema": 0.9}, {"early_stopping_patience": 3}):
        with pytest.raises(EmorecError, match="takes neither weight_ema nor early_stopping_patience"):
            TrainConfig.from_params({**base, "swa_epochs": 1, **clash}, {}, 0)
    host = {"online_augmentation": {"horizontal_flip": True}}
    for warp in ({}, {"horizontal_flip": False, "zoom": 0.1}, {"horizontal_flip": False, "translation": 0.1}):
        with pytest.raises(EmorecError, match="warps faces on the host"):      # flip is on by default
            TrainConfig.from_params({**base, **host, "batch_augmentation": {**warp, "downscale": 0.2}}, {}, 0)
    both = TrainConfig.from_params({**base, **host, "batch_augmentation": {"horizontal_flip": False,
                                                                           "downscale": 0.2, "noise": 0.02}}, {}, 0)
    assert both.online_augmentation and both.batch_augmentation["downscale"] == 0.2
    with pytest.raises(EmorecError, match="unknown key"):
        TrainConfig.from_params({**base, "batch_augmentation": {"flip": True}}, {}, 0)
    with pytest.raises(EmorecError, match="mixed_precision must be.*'bfloat16'"):
        TrainConfig.from_params({**base, "mixed_precision": "bfloat16"}, {}, 0)


def test_precision_policy_keeps_the_old_switch_and_names_bfloat16():
    assert [recipe.precision_policy(v) for v in (False, None, "float32")] == ["float32"] * 3
    assert recipe.precision_policy(True) == recipe.precision_policy("mixed_float16") == "mixed_float16"
    assert recipe.precision_policy("mixed_bfloat16") == "mixed_bfloat16"
    for bad in (1, 0, "mixed_float8", "bf16"):
        with pytest.raises(EmorecError, match="mixed_precision must be"):
            recipe.precision_policy(bad)


def test_standalone_run_trains_under_the_named_policy_and_restores_float32(tmp_path, monkeypatch):
    import keras

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["models"]["cnn"]["cpu"]["arch"] = {**params["models"]["cnn"]["cpu"].get("arch", {}), **SMALL_CNN}
    x, y = _bands(48)
    data = {"train": (x, y), "val": (x[:24], y[:24]), "classes": ("a", "b", "c")}
    seen, real_clock = [], standalone.epoch_clock

    def spying_clock(deadline):             # the runner's own clock, noting the policy the fit runs under
        clock = real_clock(deadline)
        clock.on_train_begin = lambda logs=None: seen.append(keras.mixed_precision.global_policy().name)
        return clock

    monkeypatch.setattr(standalone, "epoch_clock", spying_clock)
    run = {"name": "bf16", "model": "cnn", "scope": "cpu", "seed": 1,
           "set": {"epochs": 1, "batch_size": 16, "mixed_precision": "mixed_bfloat16", "swa_epochs": None}}
    result = standalone.train_one(run, params, data, tmp_path)
    assert seen == ["mixed_bfloat16"]
    assert result["config"]["mixed_precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_standalone_adds_in_graph_downscale_to_the_host_warps_under_bfloat16(tmp_path, monkeypatch):
    """The CPU recipe's host-side warps plus the graph's down-and-up scaling: the wrapper the fit
    sees holds the downscale layer, the saved classifier does not, and bfloat16 resizes train."""
    from emorec.training import recipe as recipe_module

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["models"]["cnn"]["cpu"]["arch"] = {**params["models"]["cnn"]["cpu"].get("arch", {}), **SMALL_CNN}
    x, y = _bands(48)
    data = {"train": (x, y), "val": (x[:24], y[:24]), "classes": ("a", "b", "c")}
    wrapped, real_augmented = [], recipe_module.augmented
    monkeypatch.setattr(recipe_module, "augmented",
                        lambda *a, **k: wrapped.append(real_augmented(*a, **k)) or wrapped[-1])
    run = {"name": "shrunk", "model": "cnn", "scope": "cpu", "seed": 1, "keep_weights": True,
           "set": {"epochs": 1, "batch_size": 16, "mixed_precision": "mixed_bfloat16", "swa_epochs": None,
                   "batch_augmentation": {"horizontal_flip": False, "downscale": 0.5}}}
    result = standalone.train_one(run, params, data, tmp_path)
    assert result["config"]["online_augmentation"]["horizontal_flip"]
    assert [type(layer).__name__ for layer in wrapped[0].layers][1] == "RandomDownscale"
    assert np.isfinite(result["history"]["loss"]).all() and 0 <= result["val_accuracy"] <= 1
    assert (tmp_path / "shrunk.weights.h5").is_file()


def test_gpu_scope_reads_the_models_gpu_block_and_its_arch():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    cnn = params["models"]["cnn"]
    gpu = TrainConfig.from_params(params["train"], cnn, 42, "fer2013", "gpu")
    cpu = TrainConfig.from_params(params["train"], cnn, 42, "fer2013", "cpu")
    assert gpu.optimizer == cnn["gpu"]["optimizer"] and gpu.epochs == cnn["gpu"]["epochs"]
    assert gpu.batch_augmentation and not gpu.online_augmentation
    assert cpu.optimizer == cnn["optimizer"] and cpu.epochs == params["train"]["epochs"]
    assert model_arch(cnn, "gpu")["convs_per_block"] == 2
    assert model_arch(cnn, "cpu") == {**cnn["arch"], **cnn["cpu"]["arch"]}
    assert model_arch(cnn, "cpu")["filters"] == cnn["arch"]["filters"] and model_arch(cnn, "full") == cnn["arch"]


# --- calibration --------------------------------------------------------------------------

def test_ece_and_temperature_fit_recover_a_known_overconfidence():
    rng = np.random.default_rng(0)
    n, k = 4000, 5
    labels = rng.integers(0, k, n)
    true_logits = rng.normal(0, 1, (n, k))
    true_logits[np.arange(n), labels] += 1.5
    probs_true = calibration.scaled(np.exp(true_logits) / np.exp(true_logits).sum(1, keepdims=True), 1.0)
    sampled = np.array([rng.choice(k, p=p) for p in probs_true])  # labels drawn from the model: calibrated
    over = calibration.scaled(probs_true, 1 / 3)                     # three times too sharp
    assert calibration.expected_calibration_error(over, sampled) > 0.1
    t = calibration.fit_temperature(over, sampled)
    assert 2.5 < t < 3.6
    assert calibration.expected_calibration_error(calibration.scaled(over, t), sampled) < 0.03
    assert calibration.nll(calibration.scaled(over, t), sampled) < calibration.nll(over, sampled)


def test_reliability_diagram_marks_bins_too_small_to_read(tmp_path):
    bins = [{"low": i / 4, "high": (i + 1) / 4, "count": c, "confidence": None if c == 0 else (i + 0.5) / 4,
             "accuracy": None if c == 0 else a} for i, (c, a) in enumerate([(0, None), (1, 1.0), (300, 0.6), (699, 0.8)])]
    assert calibration.sparse_bins(bins) == [False, True, False, False]     # empty bins are not "sparse"
    assert calibration.sparse_bins(bins, share=0.5) == [False, True, True, False]
    figure = tmp_path / "reliability.png"
    calibration.plot_reliability(bins, bins, figure, "t", 0.05, 0.02, 1.2)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tta_views_and_shrinking():
    x = np.random.default_rng(0).integers(0, 255, (3, 48, 48, 1)).astype(np.uint8)
    assert len(calibration.views(x, None)) == 1
    flip = calibration.views(x, "flip")
    np.testing.assert_array_equal(flip[1], x[:, :, ::-1])
    ten = calibration.views(x, "ten")
    assert len(ten) == 10 and all(v.shape == x.shape for v in ten)
    with pytest.raises(EmorecError, match="evaluate.tta"):
        calibration.views(x, "twelve")
    small = calibration.shrunk(x, 16)
    assert small.shape == x.shape and not np.array_equal(small, x)


def test_scoring_sections(tmp_path):
    x, y = _bands(n=42, classes=3)
    ids = np.array([f"test/a/{'PrivateTest' if i % 2 else 'PublicTest'}_{i}.jpg" for i in range(len(y))])

    def predict(faces):              # a fixed "model": the class is where the bright band is
        rows = faces[..., 0].reshape(len(faces), 3, 16, 48).mean(axis=(2, 3))
        e = np.exp(rows / 20.0)
        return e / e.sum(1, keepdims=True)

    out = scoring.score(predict, x, y, x, y, predict(x), ids, ("a", "b", "c"), "flip", [16, 24, 64],
                        tmp_path / "rel.png", "t")
    assert (tmp_path / "rel.png").stat().st_size > 5000
    assert set(out["subsets"]) == {"PrivateTest", "PublicTest"}
    assert out["subsets"]["PrivateTest"]["n"] == 21
    assert set(out["face_size"]) == {"16", "24"}            # 64 px is not smaller than the faces
    assert out["tta"]["n_views"] == 2 and out["tta"]["accuracy"] == 1.0
    assert out["tta"]["validation_accuracy"] == 1.0 and out["tta"]["validation_gain"] == 0.0
    cal = out["calibration"]
    assert cal["fitted_on"] == "validation" and 0.05 <= cal["temperature"] <= 20
    assert cal["ece"]["validation_scaled"] <= cal["ece"]["validation_raw"] + 1e-6


# --- the standalone runner (GPU profile) ----------------------------------------------------

def _write_prepared(folder: Path, n_train=48, n_val=24):
    folder.mkdir(parents=True)
    classes = np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    for part, n in (("train", n_train), ("val", n_val), ("test", 7)):
        x, y = _bands(n=n, classes=7, seed=len(part))
        np.savez(folder / f"{part}.npz", images=x, labels=y, classes=classes,
                 source_id=np.array([f"{part}/{i}.jpg" for i in range(n)]))


def _write_other_dataset(folder: Path, seed: int = 3):
    """An AffectNet-like test split: 8 classes (contempt last), 96 px colour faces."""
    folder.mkdir(parents=True)
    classes = np.array(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"])
    y = np.arange(16) % 8
    x = np.random.default_rng(seed).integers(0, 255, (16, 96, 96, 3)).astype(np.uint8)
    np.savez(folder / "test.npz", images=x, labels=y, classes=classes,
             source_id=np.array([f"test/{i}.jpg" for i in range(16)]))


def test_pack_round_trip_and_refuses_a_truncated_pack(tmp_path):
    _write_prepared(tmp_path / "prep")
    stem = tmp_path / "pack" / "fer2013"
    standalone.write_pack(tmp_path / "prep", stem)
    data = standalone.read_pack(stem)
    assert data["train"][0].shape == (48, 48, 48, 1) and data["val"][1].shape == (24,)
    assert "test" not in data                                # the test split never travels
    meta = json.loads(stem.with_suffix(".json").read_text())
    meta["parts"]["val"]["n"] = 30
    stem.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(EmorecError, match="shorter than its json"):
        standalone.read_pack(stem)


def test_standalone_runs_the_gpu_recipe_a_few_steps_under_jax(tmp_path, capsys):
    """The GPU profile's code path, on CPU: the recipe (scope gpu) and an ablation row
    (scope cpu, host-side flips and shifts) each train one epoch under KERAS_BACKEND=jax."""
    pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[dev]' installs it)")
    _write_prepared(tmp_path / "prep", n_train=64, n_val=16)
    standalone.write_pack(tmp_path / "prep", tmp_path / "pack" / "fer2013")
    plan = [{"name": "recipe", "model": "cnn", "scope": "gpu", "keep_weights": True,
             "set": {"epochs": 1, "batch_size": 32, "arch.filters": [8, 16], "arch.dense_units": 16}},
            {"name": "baseline", "model": "cnn", "scope": "cpu",
             "set": {"epochs": 2, "batch_size": 32, "arch.filters": [8, 16], "arch.dense_units": 16,
                     "weight_ema": 0.9, "swa_epochs": None}},
            {"name": "averaged", "model": "cnn", "scope": "cpu",
             "set": {"epochs": 2, "batch_size": 32, "arch.filters": [8, 16], "arch.dense_units": 16,
                     "swa_epochs": 1, "early_stopping_patience": None}}]
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-m", "emorec.training.standalone", str(tmp_path / "plan.yaml"),
                             "--pack", str(tmp_path / "pack" / "fer2013"), "--out", str(tmp_path / "out"),
                             "--params", str(REPO / "params.yaml")],
                            capture_output=True, text=True, env=env, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["name"] for r in results] == ["recipe", "baseline", "averaged"]
    assert results[2]["weight_average"]["applied"] and results[2]["weight_average"]["epochs"] == [2]
    assert 0 <= results[2]["weight_average"]["last_epoch_raw"]["val_accuracy"] <= 1
    assert results[0]["weight_average"] is None
    assert results[0]["config"]["optimizer"] == "sgd_nesterov" and results[0]["arch"]["convs_per_block"] == 2
    assert results[1]["config"]["online_augmentation"] and "(jax)" in results[0]["hardware"]
    assert results[1]["config"]["weight_ema"] == 0.9 and results[1]["epochs_run"] == 2
    assert (tmp_path / "out" / "recipe.weights.h5").is_file()
    assert not (tmp_path / "out" / "baseline.weights.h5").exists()

    # the weights come back and are scored here, on the test split the runner never saw
    from emorec.training import recipe_report

    with pytest.raises(SystemExit, match="--cross .*no test.npz"):
        recipe_report.main([str(tmp_path / "out"), "--prepared", str(tmp_path / "prep"),
                            "--out", str(tmp_path / "report"), "--cross", str(tmp_path / "absent")])
    assert not (tmp_path / "report").exists()                # refused before anything is written
    _write_other_dataset(tmp_path / "affectnet")
    assert recipe_report.main([str(tmp_path / "out"), "--prepared", str(tmp_path / "prep"),
                               "--out", str(tmp_path / "report"), "--cross", str(tmp_path / "affectnet")]) == 0
    rows = json.loads((tmp_path / "report" / "runs.json").read_text())
    scored = rows[0]["scored"]
    assert scored["test"]["accuracy"] >= 0 and scored["tta"]["n_views"] == 10
    cross = scored["cross"]                                 # contempt (not a FER2013 class) left out
    assert cross["dataset"] == "affectnet" and cross["classes"] == 7 and cross["n"] == 14
    assert cross["neutral_n"] == 2 and 0 <= cross["neutral_called_sad"] <= 1
    table = (tmp_path / "report" / "runs.md").read_text()
    assert "not scored" in table                            # the baseline kept no weights
    assert "| affectnet (7 classes, 14): " in table and " of 2) |" in table

    # --reuse keeps figures only while weights, data and settings are byte-for-byte the same
    report = [str(tmp_path / "out"), "--prepared", str(tmp_path / "prep"), "--out", str(tmp_path / "report"),
              "--cross", str(tmp_path / "affectnet"), "--reuse"]
    capsys.readouterr()
    assert recipe_report.main(report) == 0
    assert "recipe: figures kept" in capsys.readouterr().out
    assert json.loads((tmp_path / "report" / "runs.json").read_text())[0]["scored"] == scored
    shutil.rmtree(tmp_path / "affectnet")
    _write_other_dataset(tmp_path / "affectnet", seed=4)     # same shape, other pixels
    assert recipe_report.main(report) == 0
    assert "figures kept" not in capsys.readouterr().out

    # a run becomes a model file the real-time path loads (safe mode), temperature and all
    from emorec.inference.classifier import Classifier

    rows = json.loads((tmp_path / "report" / "runs.json").read_text())
    path = recipe_report.to_keras_file(rows[0], tmp_path / "out" / "recipe.weights.h5", tmp_path / "keras")
    classifier = Classifier(str(path))
    assert classifier.temperature == rows[0]["scored"]["calibration"]["temperature"]
    assert classifier.classes == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    probs = classifier.predict_faces([np.full((60, 50, 3), 120, np.uint8)])
    assert probs.shape == (1, 7) and abs(float(probs.sum()) - 1) < 1e-4
    assert "| cpu recipe; " in table and "epochs=2" in table and "weight_ema=0.9 |" in table
    assert (tmp_path / "report" / "recipe-reliability.png").is_file()


def test_studies_train_the_grids_own_architecture():
    """The seeds and cross-validation studies build the model the grid trains: the scope's
    `arch:` over the model's (here the CPU profile's lower dropout)."""
    from emorec.training import studies

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    _, arch = studies.study_config(params, "fer2013", "cnn", 7)
    assert arch == model_arch(params["models"]["cnn"], params["grid"]["profile"])
    assert arch["conv_dropout"] == params["models"]["cnn"]["cpu"]["arch"]["conv_dropout"]


# --- distillation: the teacher file and a student trained towards it ---------------------------

def _tiny_member(path: Path, classes: int = 7, size: int = 48) -> Path:
    import keras

    from emorec import models

    keras.utils.set_random_seed(0)
    model = models.build("cnn", (size, size, 1), classes, filters=(4, 8), dense_units=8)
    model.save(path)
    return path


def test_teacher_file_is_tied_to_its_data_and_checked_before_use(tmp_path, capsys, monkeypatch):
    from emorec.data import prepared as prep
    from emorec.training import distill

    _write_prepared(tmp_path / "prep")
    member = _tiny_member(tmp_path / "m.keras")
    out = tmp_path / "teacher.npz"
    assert distill.main([str(tmp_path / "prep"), "--member", str(member), "--member", str(member),
                         "--tta", "flip", "--out", str(out)]) == 0
    assert "48 faces" in capsys.readouterr().out
    x, y, classes = prep.load_part(tmp_path / "prep", "train")
    probs = distill.read_targets(out, x, y, classes)
    assert probs.shape == (48, 7) and np.allclose(probs.sum(1), 1, atol=1e-4)
    assert not list(tmp_path.glob("*.tmp*"))                  # temp path renamed away

    targets = distill.soft_targets(y, probs, 0.5)             # half label, half teacher
    assert np.allclose(targets.sum(1), 1, atol=1e-4) and (targets[np.arange(48), y] >= 0.5).all()
    with pytest.raises(EmorecError, match="weight must be in"):
        distill.soft_targets(y, probs, 0.0)

    other = x.copy()
    other[0, 0, 0, 0] ^= 1                                    # one pixel of other faces
    with pytest.raises(EmorecError, match="teacher.npz: the teacher was computed on other training faces"):
        distill.read_targets(out, other, y, classes)
    with pytest.raises(EmorecError, match="classes"):
        distill.read_targets(out, x, y, tuple(reversed(classes)))
    with pytest.raises(EmorecError, match=r"shape \(48, 7\), the training split needs \(47, 7\)"):
        distill.read_targets(out, x[:47], y[:47], classes)
    with np.load(out) as f:
        fields = {k: f[k] for k in f.files}
    for bad, match in (({"probs": fields["probs"] * 2}, "not distributions"),
                       ({"probs": np.full_like(fields["probs"], np.nan)}, "not distributions"),
                       ({"format": np.array("other")}, "not an emorec teacher file")):
        np.savez(tmp_path / "bad.npz", **{**fields, **bad})
        with pytest.raises(EmorecError, match=f"bad.npz: .*{match}"):
            distill.read_targets(tmp_path / "bad.npz", x, y, classes)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(EmorecError, match="junk.npz: not an emorec teacher file"):
        distill.read_targets(tmp_path / "junk.npz", x, y, classes)
    with pytest.raises(EmorecError, match="absent.npz: teacher file not found"):
        distill.read_targets(tmp_path / "absent.npz", x, y, classes)

    # an MLflow URI is looked up in the tracking store; one that is not there is named
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert distill.main([str(tmp_path / "prep"), "--member", "runs:/0123456789abcdef/model",
                         "--out", str(tmp_path / "t3.npz")]) == 2
    assert "runs:/0123456789abcdef/model: cannot load this teacher from sqlite:" in capsys.readouterr().err

    # a teacher of another label set is refused before it writes anything
    wrong = _tiny_member(tmp_path / "eight.keras", classes=8)
    assert distill.main([str(tmp_path / "prep"), "--member", str(wrong), "--out", str(tmp_path / "t2.npz")]) == 2
    assert "eight.keras: the teacher takes 48x48x1 faces and gives 8 classes" in capsys.readouterr().err
    assert not (tmp_path / "t2.npz").exists()


def test_standalone_trains_a_student_towards_the_teacher(tmp_path):
    from emorec.training import distill

    _write_prepared(tmp_path / "prep")
    distill.main([str(tmp_path / "prep"), "--member", str(_tiny_member(tmp_path / "m.keras")),
                  "--out", str(tmp_path / "teacher.npz")])
    standalone.write_pack(tmp_path / "prep", tmp_path / "pack" / "fer2013")
    plan = [{"name": "student", "model": "cnn", "scope": "cpu", "keep_weights": True,
             "teacher": {"targets": str(tmp_path / "teacher.npz"), "weight": 0.5},
             "set": {"epochs": 2, "batch_size": 16, "arch.filters": [8, 16], "arch.dense_units": 16,
                     "swa_epochs": None}}]
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    assert standalone.main([str(tmp_path / "plan.yaml"), "--pack", str(tmp_path / "pack" / "fer2013"),
                            "--out", str(tmp_path / "out"), "--params", str(REPO / "params.yaml")]) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())[0]
    assert result["teacher"]["weight"] == 0.5 and result["epochs_run"] == 2
    assert 0 <= result["val_accuracy"] <= 1 and (tmp_path / "out" / "student.weights.h5").is_file()
    from emorec.training.recipe_report import change

    assert "distilled from teacher.npz (weight 0.5)" in change(result)
    assert change(result).startswith("cpu recipe;")           # the CNN's recipe is not named twice
    assert change({**result, "model": "mini_xception"}).startswith("cpu recipe of mini_xception;")

    # scored here; --keep-rows carries the rows of runs whose weights stayed elsewhere
    from emorec.training import recipe_report

    report = [str(tmp_path / "out"), "--prepared", str(tmp_path / "prep"), "--out", str(tmp_path / "report")]
    assert recipe_report.main(report) == 0
    rows = json.loads((tmp_path / "report" / "runs.json").read_text())
    (tmp_path / "report" / "runs.json").write_text(json.dumps([{**rows[0], "name": "earlier"}]))
    assert recipe_report.main([*report, "--keep-rows"]) == 0
    assert [r["name"] for r in json.loads((tmp_path / "report" / "runs.json").read_text())] == ["earlier", "student"]
    kept = json.loads((tmp_path / "report" / "runs.json").read_text())
    (tmp_path / "report" / "runs.json").write_text(json.dumps([kept[1], kept[0]]))
    assert recipe_report.main([*report, "--keep-rows"]) == 0  # re-scored in its place, not moved to the end
    assert [r["name"] for r in json.loads((tmp_path / "report" / "runs.json").read_text())] == ["student", "earlier"]
    assert "distilled from teacher.npz" in (tmp_path / "report" / "runs.md").read_text()
    assert recipe_report.main(report) == 0
    assert [r["name"] for r in json.loads((tmp_path / "report" / "runs.json").read_text())] == ["student"]

    plan[0]["teacher"] = {"targets": str(tmp_path / "teacher.npz")}
    (tmp_path / "bad_plan.yaml").write_text(yaml.safe_dump(plan))
    with pytest.raises(EmorecError, match="plan run 'student': teacher must be"):
        standalone.main([str(tmp_path / "bad_plan.yaml"), "--pack", str(tmp_path / "pack" / "fer2013"),
                         "--out", str(tmp_path / "out3"), "--params", str(REPO / "params.yaml")])

    # a teacher file of other faces stops the run, naming the file
    _write_prepared(tmp_path / "prep2", n_train=40)
    standalone.write_pack(tmp_path / "prep2", tmp_path / "pack2" / "fer2013")
    with pytest.raises(EmorecError, match="teacher.npz: teacher probabilities have shape"):
        standalone.main([str(tmp_path / "plan.yaml"), "--pack", str(tmp_path / "pack2" / "fer2013"),
                         "--out", str(tmp_path / "out2"), "--params", str(REPO / "params.yaml")])


# --- the standalone runner on a lent GPU: minutes, not hours --------------------------------

def test_epochs_within_pays_compile_once_and_rounds_down():
    # probe: 20 s first epoch, then 2 s and 2.5 s: 2.25 s an epoch (the median), 17.75 s of compile
    assert standalone.epochs_within(300, [20.0, 2.0, 2.5], planned=300) == (300 - 17.75 - 20) // 2.25 == 116
    assert standalone.epochs_within(300, [20.0, 2.0, 2.5], planned=300, step=10) == 110
    assert standalone.epochs_within(300, [20.0, 2.0, 2.0, 9.0], planned=300, step=10) == 130   # one slow epoch
    assert standalone.epochs_within(300, [20.0, 2.0, 2.5], planned=60, step=10) == 60      # never past the plan
    assert standalone.epochs_within(30, [20.0, 2.0, 2.5], planned=60, step=10) == 1        # at least one
    with pytest.raises(EmorecError, match="at least 2 timed epochs"):
        standalone.epochs_within(300, [20.0], planned=60)


def test_epoch_clock_stops_a_fit_whose_next_epoch_would_end_late():
    import time

    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x, y = np.zeros((32, 4), np.float32), np.zeros(32, np.int64)
    clock = standalone.epoch_clock(deadline=time.time() + 0.05)
    model.fit(x, y, epochs=50, batch_size=8, verbose=0, callbacks=[clock])
    assert clock.stopped and 1 <= len(clock.seconds) < 50
    free = standalone.epoch_clock(deadline=None)
    model.fit(x, y, epochs=3, batch_size=8, verbose=0, callbacks=[free])
    assert not free.stopped and len(free.seconds) == 3


def test_standalone_time_box_probes_then_trains_what_fits(tmp_path):
    _write_prepared(tmp_path / "prep", n_train=32, n_val=16)
    standalone.write_pack(tmp_path / "prep", tmp_path / "pack" / "fer2013")
    tiny = {"batch_size": 16, "arch.filters": [4, 8], "arch.dense_units": 8, "verbose": 0}
    plan = [{"name": "boxed", "model": "cnn", "scope": "gpu", "set": {**tiny, "epochs": 40}},
            {"name": "other", "model": "cnn", "scope": "cpu", "set": {**tiny, "epochs": 1, "swa_epochs": None}}]
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    args = [str(tmp_path / "plan.yaml"), "--pack", str(tmp_path / "pack" / "fer2013"),
            "--params", str(REPO / "params.yaml"), "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=r"--only: \['absent'\] not in"):
        standalone.main([*args, "--only", "absent"])
    with pytest.raises(SystemExit, match="--probe-epochs: at least 2"):
        standalone.main([*args, "--probe-epochs", "1"])
    (tmp_path / "bad.yaml").write_text("name: boxed\n")
    with pytest.raises(SystemExit, match="bad.yaml: a plan is a YAML list of runs"):
        standalone.main([str(tmp_path / "bad.yaml"), *args[1:]])

    # a box too short for more than the probe: one epoch, both counts recorded; --only skips "other"
    assert standalone.main([*args, "--only", "boxed", "--time-box", "0.5", "--probe-epochs", "2"]) == 0
    (result,) = json.loads((tmp_path / "out" / "results.json").read_text())
    assert result["name"] == "boxed" and result["epochs"] == 1 and result["epochs_run"] == 1
    assert result["time_box"]["planned_epochs"] == 40 and len(result["time_box"]["probe_epoch_seconds"]) == 2
    assert len(result["epoch_seconds"]) == 1 and result["stopped_by_deadline"] is False
    assert not (tmp_path / "out" / "boxed-probe.weights.h5").exists()


def test_recipe_report_scores_an_ensemble_of_runs_as_one_row(tmp_path, capsys):
    from emorec.training import recipe_report

    _write_prepared(tmp_path / "prep", n_train=32, n_val=16)
    standalone.write_pack(tmp_path / "prep", tmp_path / "pack" / "fer2013")
    tiny = {"batch_size": 16, "arch.filters": [4, 8], "arch.dense_units": 8, "verbose": 0, "epochs": 1}
    plan = [{"name": f"seed{s}", "model": "cnn", "scope": "gpu", "seed": s, "keep_weights": True, "set": tiny}
            for s in (1, 2)]
    (tmp_path / "plan.yaml").write_text(yaml.safe_dump(plan))
    assert standalone.main([str(tmp_path / "plan.yaml"), "--pack", str(tmp_path / "pack" / "fer2013"),
                            "--params", str(REPO / "params.yaml"), "--out", str(tmp_path / "out")]) == 0
    report = [str(tmp_path / "out"), "--prepared", str(tmp_path / "prep"), "--out", str(tmp_path / "report")]
    with pytest.raises(SystemExit, match="expected NAME=RUN,RUN"):
        recipe_report.main([*report, "--ensemble", "both=seed1"])
    with pytest.raises(SystemExit, match=r"--ensemble both: \['seed3'\] not among the runs with weights"):
        recipe_report.main([*report, "--ensemble", "both=seed1,seed3"])
    assert recipe_report.main([*report, "--ensemble", "both=seed1,seed2"]) == 0
    rows = {r["name"]: r for r in json.loads((tmp_path / "report" / "runs.json").read_text())}
    both = rows["both"]
    assert both["model"] == "ensemble" and both["members"] == ["seed1", "seed2"]
    assert 0 <= both["val_accuracy"] <= 1 and both["scored"]["tta"]["n_views"] == 10
    assert both["seconds"] == pytest.approx(rows["seed1"]["seconds"] + rows["seed2"]["seconds"])
    assert "| mean softmax of 2 runs: seed1, seed2 |" in (tmp_path / "report" / "runs.md").read_text()
    assert (tmp_path / "report" / "both-reliability.png").is_file()
    capsys.readouterr()
    assert recipe_report.main([*report, "--ensemble", "both=seed1,seed2", "--reuse"]) == 0
    assert "both: figures kept" in capsys.readouterr().out

    # --export: each run as a .keras file with its fitted temperature, usable as a teacher member
    from emorec.training import distill

    assert recipe_report.main([*report, "--reuse", "--export", str(tmp_path / "keras")]) == 0
    for seed in ("seed1", "seed2"):
        spec = json.loads((tmp_path / "keras" / seed / "preprocessing.json").read_text())
        assert spec["temperature"] == rows[seed]["scored"]["calibration"]["temperature"]
    assert distill.main([str(tmp_path / "prep"), "--member", str(tmp_path / "keras" / "seed1" / "model.keras"),
                         "--member", str(tmp_path / "keras" / "seed2" / "model.keras"),
                         "--out", str(tmp_path / "teacher.npz")]) == 0
    assert "32 faces" in capsys.readouterr().out
    (tmp_path / "a_file").write_text("")
    with pytest.raises(SystemExit, match="--export .*a_file: exists and is not a folder"):
        recipe_report.main([*report, "--reuse", "--export", str(tmp_path / "a_file")])
    results = tmp_path / "out" / "results.json"
    results.write_text(results.read_text().replace('"seed2"', '"../seed2"'))
    with pytest.raises(SystemExit, match=r"results.json names a run '\.\./seed2', which is not a plain file name"):
        recipe_report.main([*report, "--reuse", "--export", str(tmp_path / "keras2")])
    assert not (tmp_path / "keras2").exists() and not (tmp_path / "seed2").exists()
    with pytest.raises(SystemExit, match=r"--ensemble '\.\./both=seed1,seed2' names a run '\.\./both'"):
        recipe_report.main([*report, "--ensemble", "../both=seed1,seed2"])
    assert not (tmp_path / "both-reliability.png").exists()


def test_every_committed_plan_resolves_against_the_committed_params():
    """A plan in benchmarks/recipe/ is what a lent GPU call runs blind: each run's settings must
    resolve (known fields, unique names) before any device time is spent on it."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    plans = sorted((REPO / "benchmarks" / "recipe").glob("*.yaml"))
    assert len(plans) >= 10
    for path in plans:
        plan = yaml.safe_load(path.read_text())
        names = [run["name"] for run in plan]
        assert len(names) == len(set(names)), path.name
        for run in plan:
            cfg, _ = standalone.config_for(params, run["model"], run.get("scope", "gpu"), int(run.get("seed", params["seed"])),
                                run.get("dataset", "fer2013"), run.get("set") or {})
            assert cfg.epochs >= 1, (path.name, run["name"])
            assert set(run.get("teacher") or {"targets": 1, "weight": 1}) == {"targets", "weight"}, run["name"]
