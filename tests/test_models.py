"""The model registry and the paper CNN: builds, learns, round-trips with safe mode on."""

from __future__ import annotations

import numpy as np
import pytest

from emorec import models
from emorec.errors import EmorecError


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(EmorecError, match="unknown model 'resnet1000'; known: .*cnn"):
        models.get("resnet1000")


def test_input_below_minimum_is_refused():
    with pytest.raises(EmorecError, match="at least 16x16"):
        models.build("cnn", (8, 8, 1), 7)


def test_cnn_matches_the_paper_layout():
    model = models.build("cnn", (48, 48, 1), 7)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Conv2D") == 4 and kinds.count("MaxPooling2D") == 4
    dense = [layer for layer in model.layers if type(layer).__name__ == "Dense"]
    assert [d.units for d in dense] == [512, 512, 7]
    dropouts = sorted({round(layer.rate, 2) for layer in model.layers if type(layer).__name__ == "Dropout"})
    assert dropouts == [0.25, 0.5]
    assert model.output_shape == (None, 7)


def test_one_training_step_lowers_the_loss_and_round_trips(tmp_path):
    import keras

    keras.utils.set_random_seed(0)
    model = models.build("cnn", (48, 48, 1), 3, filters=(8, 16), dense_units=32)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((32, 48, 48, 1)).astype("float32")
    y = rng.integers(0, 3, 32)
    before = model.evaluate(x, y, verbose=0)
    for _ in range(5):
        model.train_on_batch(x, y)
    after = model.evaluate(x, y, verbose=0)
    assert after < before
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)
