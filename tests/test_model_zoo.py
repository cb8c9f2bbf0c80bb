"""Every registered architecture: builds at each dataset's input size and channel count,
learns on a tiny batch, round-trips through save/load with Keras safe mode on, and
refuses impossible inputs with a clear message. Plus the weights resolution (offline
message, scratch fallback), frozen-feature caching and Rectified Adam."""

from __future__ import annotations

import numpy as np
import pytest

from emorec import models
from emorec.errors import EmorecError
from emorec.models import loading, weights

# The smallest input each architecture is exercised at in the unit tests (fast on CPU).
SMALL = {"cnn": 48, "resnet18": 48, "custom_mobilenet": 48, "densenet121": 32, "vgg16": 32,
         "efficientnetv2b0": 32, "inceptionv3": 75, "vit_b16": 32, "vit_b32": 32}
# architectures of our own (not paper rows), exercised the same way
OURS = {"mini_xception": 48}
EXERCISED = SMALL | OURS
TINY_ARCH = {"cnn": {"filters": (8, 16), "dense_units": 16}, "resnet18": {"filters": (8, 8, 16, 16)},
             "custom_mobilenet": {"alpha": 0.25, "patch_filters": 8, "dense_units": 16},
             "mini_xception": {"stem_filters": (4,), "filters": (8, 16)}}


def test_every_paper_architecture_is_registered():
    assert set(SMALL) <= set(models.available())


def test_every_registered_architecture_is_exercised_here():
    """A new module in emorec/models is built, trained and round-tripped below, or this fails."""
    assert set(models.available()) <= set(EXERCISED)


@pytest.mark.parametrize("name", sorted(EXERCISED))
@pytest.mark.parametrize("channels", [1, 3])
def test_builds_at_dataset_shapes(name, channels):
    import keras

    spec = models.get(name)
    ch = models.input_channels(name, channels)
    if spec.channels:
        assert ch == spec.channels  # grey is replicated for ImageNet-shaped backbones
    size = EXERCISED[name]
    model = models.build(name, (size, size, ch), 8 if channels == 3 else 7,
                         **TINY_ARCH.get(name, {}))
    assert model.output_shape == (None, 8 if channels == 3 else 7)
    keras.backend.clear_session()


@pytest.mark.parametrize("name", sorted(EXERCISED))
def test_one_step_lowers_the_loss_and_round_trips(name, tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    size = EXERCISED[name]
    ch = models.input_channels(name, 1)
    model = models.build(name, (size, size, ch), 3, **TINY_ARCH.get(name, {}))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    y = np.arange(16) % 3
    x = rng.random((16, size, size, ch)).astype("float32") * 0.2
    band = size // 3
    for i, c in enumerate(y):   # a bright band whose position is the class: learnable
        x[i, band * c:band * (c + 1)] += 0.8
    # training-mode loss: BatchNorm's moving statistics barely move in a few steps, so an
    # inference-mode evaluate() is not a fair "did it learn" check for the deep backbones
    loss = model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0).history["loss"]
    assert loss[-1] < loss[0], loss
    path = tmp_path / "m.keras"
    model.save(path)
    loading.register_custom_layers()
    keras.models.load_model(path, safe_mode=True)  # no architecture needs safe mode off
    loaded = loading.load_file(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    keras.backend.clear_session()


def test_inception_below_75px_is_refused():
    with pytest.raises(EmorecError, match="at least 75x75.*input_size"):
        models.build("inceptionv3", (48, 48, 3), 7)


def test_vit_needs_a_multiple_of_its_patch():
    with pytest.raises(EmorecError, match="multiple of 16"):
        models.build("vit_b16", (40, 40, 3), 7)


def test_unknown_model_is_named():
    with pytest.raises(EmorecError, match="unknown model 'resnet50'"):
        models.build("resnet50", (48, 48, 1), 7)


def test_scratch_only_models_refuse_pretrained_weights(tmp_path):
    f = tmp_path / "w.h5"
    f.write_bytes(b"x")
    with pytest.raises(EmorecError, match="no pretrained weights"):
        models.build("resnet18", (48, 48, 1), 7, weights=weights.ResolvedWeights(f, "file:w.h5", str(f)))


# --- weights -----------------------------------------------------------------------------

def test_missing_imagenet_weights_name_the_file_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(EmorecError) as err:
        weights.resolve("densenet121", "imagenet", None, allow_download=False)
    msg = str(err.value)
    assert "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5" in msg
    assert str(tmp_path / "models") in msg and "weights_fallback: scratch" in msg


def test_download_failure_is_the_same_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def no_network(*a, **k):
        raise OSError("Name or service not known")

    monkeypatch.setattr("urllib.request.urlretrieve", no_network)
    with pytest.raises(EmorecError, match="download failed.*Name or service not known.*place it at"):
        weights.resolve("vit_b16", "imagenet", None, allow_download=True)


def test_scratch_fallback_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    got = weights.resolve("vgg16", "imagenet", "scratch", allow_download=False)
    assert got.path is None and got.label == "scratch" and "vgg16_weights" in got.note


def test_cached_file_with_a_wrong_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    target = weights.PRETRAINED["vgg16"].cache_path()
    target.parent.mkdir(parents=True)
    target.write_bytes(b"not the weights")
    with pytest.raises(EmorecError, match="checksum"):
        weights.resolve("vgg16", "imagenet")


def test_null_and_path_weights(tmp_path):
    assert weights.resolve("cnn", None).label == "scratch"
    f = tmp_path / "mine.weights.h5"
    f.write_bytes(b"x")
    assert weights.resolve("vgg16", str(f)).label == "file:mine.weights.h5"
    with pytest.raises(EmorecError, match="does not exist"):
        weights.resolve("vgg16", str(tmp_path / "nope.h5"))
    with pytest.raises(EmorecError, match="weights_fallback"):
        weights.resolve("vgg16", "imagenet", "pretend")


# --- frozen backbone: features once ------------------------------------------------------

def _pretrained_mobilenet(tmp_path, size=32):
    """A stand-in for the ImageNet file: a MobileNet's own weights, saved and resolved."""
    import keras

    keras.utils.set_random_seed(1)
    base = keras.applications.MobileNet(input_shape=(size, size, 3), alpha=0.25, include_top=False,
                                        weights=None)
    path = tmp_path / "mobilenet.weights.h5"
    base.save_weights(path)
    return weights.ResolvedWeights(path, "file:mobilenet.weights.h5", str(path))


def test_head_on_cached_features_matches_end_to_end(tmp_path):
    import keras

    from emorec.training import fit as training

    resolved = _pretrained_mobilenet(tmp_path)
    rng = np.random.default_rng(0)
    x = rng.random((24, 32, 32, 3)).astype("float32")
    y = np.arange(24) % 3
    arch = {"alpha": 0.25, "patch_filters": 8, "dense_units": 16, "dropout": 0.0}

    def fresh():
        keras.utils.set_random_seed(7)
        return models.build("custom_mobilenet", (32, 32, 3), 3, weights=resolved, **arch)

    end_to_end = fresh()
    assert training.frozen_parts(end_to_end) is not None
    end_to_end.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    end_to_end.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    cached = fresh()
    features, head = training.frozen_parts(cached)
    feats = features.predict(x, verbose=0)
    head.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    head.fit(feats, y, batch_size=8, epochs=2, shuffle=False, verbose=0)

    for a, b in zip(end_to_end.get_layer("head").get_weights(), head.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(cached.predict(x, verbose=0), end_to_end.predict(x, verbose=0), atol=1e-5)


def test_scratch_backbone_is_fully_trainable():
    from emorec.training import fit as training

    model = models.build("custom_mobilenet", (32, 32, 3), 3, alpha=0.25, patch_filters=8, dense_units=16)
    assert training.frozen_parts(model) is None
    assert model.get_layer("features").trainable_weights


def test_rectified_adam_learns_and_serialises(tmp_path):
    import keras

    from emorec.models import optimizers

    keras.utils.set_random_seed(0)
    model = models.build("cnn", (16, 16, 1), 2, filters=(4,), dense_units=8)
    model.compile(optimizer=optimizers.make("radam", 1e-2), loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((32, 16, 16, 1)).astype("float32")
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(int)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=10, verbose=0)  # passes rho_t > 4 after a few steps
    assert model.evaluate(x, y, verbose=0) < before
    model.save(tmp_path / "r.keras")
    loaded = loading.load_file(tmp_path / "r.keras")
    assert type(loaded.optimizer).__name__ == "RectifiedAdam"


def test_mini_xception_projection_is_every_second_pixel_through_a_1x1_convolution():
    """The residual projection is written as a stride-2 1x1 pooling and a 1x1 convolution (a
    strided 1x1 convolution aborts TensorFlow's oneDNN training on some CPUs): it must be the
    function of a 1x1/2 convolution, odd sizes included."""
    import keras

    model = models.build("mini_xception", (17, 17, 1), 3, stem_filters=(4,), filters=(8,))
    probe = keras.Model(model.input, [model.get_layer("stem_relu1").output, model.get_layer("module1_proj").output])
    x = np.random.default_rng(0).random((2, 17, 17, 1)).astype("float32")
    stem, projected = probe.predict(x, verbose=0)
    kernel = model.get_layer("module1_proj").get_weights()[0][0, 0]          # (in, out)
    assert projected.shape == (2, 9, 9, 8)                                    # ceil(17 / 2), as "same" padding
    np.testing.assert_allclose(projected, np.einsum("nhwc,cd->nhwd", stem[:, ::2, ::2], kernel), rtol=1e-5, atol=1e-6)
