"""A model file never runs code, whatever it says about itself (the hardening issue, item 1).

The crafted file is what an attacker would put in a shared registry: a `.keras` archive
whose model is named `vit_b16` (the name the old loader trusted to turn safe mode off),
holding a Lambda layer that creates a marker file when it is called, with a `run.json`
beside it. Every loader must refuse it with a message and the marker must never appear."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from emorec import models
from emorec.errors import EmorecError
from emorec.models import loading


def _crafted_model(folder, marker):
    import keras

    command = f"open({str(marker)!r}, 'w').write('ran')"
    inputs = keras.Input((48, 48, 3))
    payload = eval(f"lambda t: (exec({command!r}), t)[1]")  # the path is a constant of its code
    x = keras.layers.Lambda(payload, name="ExtractToken")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    model = keras.Model(inputs, outputs, name="vit_b16")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.keras"
    model.save(path)
    marker.unlink(missing_ok=True)   # building the model called the lambda once
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    spec = {"size": 48, "channels": 3, "classes": classes, "scaling": "unit"}
    (folder / "run.json").write_text(json.dumps({"input_spec": spec, "model": "vit_b16"}))
    (folder / "preprocessing.json").write_text(json.dumps(spec))
    return path


@pytest.fixture
def crafted(tmp_path):
    marker = tmp_path / "pwned"
    return _crafted_model(tmp_path / "model", marker), marker


def test_the_crafted_file_really_carries_code(crafted):
    """The control: with safe mode off (what the old loader did) the command runs."""
    import keras

    path, marker = crafted
    keras.models.load_model(path, safe_mode=False)
    assert marker.exists()


def test_load_file_refuses_code_whatever_the_model_is_called(crafted):
    path, marker = crafted
    with pytest.raises(EmorecError, match="model.keras: refused: .*Lambda"):
        loading.load_file(path)
    assert not marker.exists()


def test_a_process_wide_unsafe_switch_does_not_open_the_loader(crafted):
    """Keras lets `enable_unsafe_deserialization()` override `safe_mode=True`; ours holds."""
    import keras
    from keras.src.backend.common import global_state

    path, marker = crafted
    keras.config.enable_unsafe_deserialization()
    try:
        with pytest.raises(EmorecError, match="refused"):
            loading.load_file(path)
    finally:
        global_state.set_global_attribute("safe_mode_saving", None)
    assert not marker.exists()


def test_training_loader_and_classifier_refuse_it(crafted):
    from emorec.inference.realtime import Classifier
    from emorec.models.loading import load_model

    path, marker = crafted
    with pytest.raises(EmorecError, match="refused"):
        load_model(path.parent)
    with pytest.raises(EmorecError, match="refused"):
        Classifier(str(path), None)
    assert not marker.exists()


def test_not_an_archive_is_named(tmp_path):
    bogus = tmp_path / "model.keras"
    bogus.write_bytes(b"not a zip")
    with pytest.raises(EmorecError, match="model.keras: not a Keras .keras archive"):
        loading.load_file(bogus)


def test_vit_saves_and_loads_with_safe_mode_on(tmp_path):
    import keras

    model = models.build("vit_b32", (32, 32, 3), 3)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "vit.keras")
    config = json.dumps(json.loads(__import__("zipfile").ZipFile(tmp_path / "vit.keras").read("config.json")))
    assert "Lambda" not in config
    loaded = loading.load_file(tmp_path / "vit.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    keras.backend.clear_session()


def test_cli_infer_refuses_it_and_exits_2(crafted, tmp_path):
    import cv2

    path, marker = crafted
    photo = tmp_path / "face.png"
    cv2.imwrite(str(photo), np.full((64, 64, 3), 128, np.uint8))
    result = subprocess.run(
        [sys.executable, "-m", "emorec.cli", "infer", str(photo), "--model", str(path),
         "--detector", "haar", "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "refused" in result.stderr
    assert not marker.exists()
