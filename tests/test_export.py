"""Every export format agrees with the Keras model on real-looking inputs."""

from __future__ import annotations

import numpy as np
import pytest

from emorec.errors import EmorecError
from emorec.inference import export


def test_export_parity_on_a_small_trained_model(tmp_path):
    import keras

    from emorec import models

    keras.utils.set_random_seed(0)
    model = models.build("cnn", (48, 48, 1), 7, filters=(8, 16), dense_units=32)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((64, 48, 48, 1)).astype("float32")
    y = rng.integers(0, 7, 64)
    model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    reference = model.predict(x, verbose=0)
    paths = export.export_all(model, tmp_path / "export", "float16")
    assert set(paths) == set(export.FORMATS) - {"tflite_dynamic_range"}
    results = export.check(paths, reference, x, latency_runs=5, batch=16)
    for fmt, r in results.items():
        assert r["passed"], (fmt, r)
        assert r["size_bytes"] > 0 and r["latency_ms_batch1_median"] > 0
    assert results["onnx"]["max_abs_diff"] < 1e-4
    assert results["tflite_float16"]["size_bytes"] < results["tflite_float32"]["size_bytes"]
    dynamic = export.export_all(model, tmp_path / "dyn", "dynamic_range")
    assert dynamic["tflite_dynamic_range"].stat().st_size < paths["tflite_float16"].stat().st_size
    with pytest.raises(EmorecError, match="export.quantization"):
        export.export_all(model, tmp_path / "x", "int4")
    text = export.report_markdown("emorec-toy", "1", results, 64, "random")
    assert "Fastest here" in text


def test_unknown_format():
    with pytest.raises(EmorecError, match="unknown export format"):
        export.Runner("coreml", None)
