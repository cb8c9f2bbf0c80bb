"""`train.distribution: data_parallel` on two virtual CPU devices (JAX, as on a multi-GPU
machine): the same small run reaches the same accuracy, within noise, as on one device,
and MLflow records the devices and the global batch. A fresh interpreter per run, since
JAX fixes its device count at start."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from emorec.errors import EmorecError
from emorec.training import distribute

SCRIPT = r"""
import json, sys
import numpy as np, keras, mlflow
from pathlib import Path
from emorec.training import fit
assert keras.backend.backend() == "jax"
tmp, dist = Path(sys.argv[1]), (None if sys.argv[2] == "none" else sys.argv[2])
mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow-{sys.argv[2]}.db")
experiment = mlflow.set_experiment("distribution").experiment_id
rng = np.random.default_rng(0)
def data(n):                      # a bright band whose position is the class
    y = np.arange(n) % 3
    x = rng.integers(0, 60, (n, 48, 48, 1)).astype(np.uint8)
    for i, c in enumerate(y):
        x[i, 16 * c:16 * c + 16] += 150
    return x, y
xt, yt = data(301); xv, yv = data(91)   # neither divides by the global batch
cfg = fit.TrainConfig(epochs=6, batch_size=16, optimizer="adam", learning_rate=1e-3, distribution=dist,
                      verbose=0, seed=1)
r = fit.train(model_name="cnn", arch={"filters": [8, 16], "dense_units": 16}, cfg=cfg, train_images=xt,
              train_labels=yt, val_images=xv, val_labels=yv, classes=("a", "b", "c"), out_dir=tmp / f"m-{dist}",
              curves_dir=tmp / f"c-{dist}", run_name=f"run-{dist}", experiment_id=experiment, log_params={}, tags={})
params = mlflow.get_run(r.run_id).data.params
print(json.dumps({"accuracy": r.val_metrics["accuracy"], "n": r.val_metrics["n"], "devices": params["devices"],
                  "global_batch": params["global_batch_size"], "epochs": r.epochs_run}))
"""


def run(tmp_path, distribution: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), distribution], capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_data_parallel_on_two_devices_matches_one_device(tmp_path):
    pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[dev]' installs it)")
    one, two = run(tmp_path, "none"), run(tmp_path, "data_parallel")
    assert (one["devices"], one["global_batch"]) == ("1", "16")
    assert (two["devices"], two["global_batch"]) == ("2", "32")
    assert one["n"] == two["n"] == 91 and one["epochs"] == two["epochs"] == 6   # every validation image scored
    assert one["accuracy"] > 0.8 and two["accuracy"] > 0.8
    assert abs(one["accuracy"] - two["accuracy"]) <= 0.1, (one, two)


def test_an_unknown_distribution_is_named():
    with pytest.raises(EmorecError, match="train.distribution must be null or data_parallel"):
        distribute.plan("model_parallel", 64)
