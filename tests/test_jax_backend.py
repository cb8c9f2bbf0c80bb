"""The CNN, ResNet18 and the custom MobileNet use Keras 3 APIs only: they build, train a
step and predict under KERAS_BACKEND=jax (the GPU machines have jax, not TensorFlow). A
fresh interpreter is needed because Keras fixes its backend at first import."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import numpy as np, keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from emorec import models
from emorec.models import optimizers
names = {"cnn": {"filters": (8, 16), "dense_units": 16, "conv_dropout": 0.0, "dense_dropout": 0.0}, "resnet18": {"filters": (8, 8, 16, 16)},
         "custom_mobilenet": {"alpha": 0.25, "patch_filters": 8, "dense_units": 16}}
rng = np.random.default_rng(0)
for name, arch in names.items():
    assert models.get(name).backend_neutral
    ch = models.input_channels(name, 1)
    model = models.build(name, (48, 48, ch), 3, **arch)
    model.compile(optimizer=optimizers.make("adam", 1e-3), loss="sparse_categorical_crossentropy")
    y = np.arange(16) % 3
    x = rng.random((16, 48, 48, ch)).astype("float32") * 0.2
    for i, c in enumerate(y):   # a bright band whose position is the class
        x[i, 16 * c:16 * c + 16] += 0.8
    loss = model.fit(x, y, batch_size=8, epochs=6, verbose=0).history["loss"]
    assert loss[-1] < loss[0], (name, loss)
    assert model.predict(x, verbose=0).shape == (16, 3)
    print(name, "ok")
"""


def test_backend_neutral_models_train_under_jax():
    pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[dev]' installs it)")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.count(" ok") == 3
