"""Atomic writes, the shared preprocessing path and metric computation."""

from __future__ import annotations

import numpy as np
import pytest

from emorec import files
from emorec.data.preprocess import InputSpec, convert_channels, to_model_input
from emorec.errors import EmorecError
from emorec.evaluation import metrics as evaluation


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "out.json"
    files.write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert files.read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_atomic_directory_replace(tmp_path):
    target = tmp_path / "model"
    for version in (1, 2):
        with files.atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "v.txt").write_text(str(version))
    assert (target / "v.txt").read_text() == "2"
    assert len(list(tmp_path.iterdir())) == 1


def test_to_model_input_resizes_converts_and_scales():
    gray = np.full((2, 48, 48, 1), 255, np.uint8)
    x = to_model_input(gray, InputSpec(96, 3, ("a",)))
    assert x.shape == (2, 96, 96, 3) and x.dtype == np.float32
    assert x.max() == pytest.approx(1.0) and x.min() == pytest.approx(1.0)
    rgb = np.zeros((1, 10, 10, 3), np.uint8)
    rgb[..., 1] = 200
    assert convert_channels(rgb, 1)[0, 0, 0, 0] == round(0.587 * 200)
    with pytest.raises(EmorecError, match="expects 1"):
        convert_channels(rgb, 1, policy="refuse")
    with pytest.raises(EmorecError, match="uint8"):
        to_model_input(gray.astype(np.float32), InputSpec(48, 1, ("a",)))


def test_metrics_match_hand_computed_values(tmp_path):
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0])
    m = evaluation.compute_metrics(y_true, y_pred, ("a", "b", "c"))
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["b"]["recall"] == pytest.approx(1.0)
    assert m["per_class"]["c"]["f1"] == pytest.approx(2 / 3)
    assert m["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    f1s = [m["per_class"][c]["f1"] for c in "abc"]
    assert m["macro_f1"] == pytest.approx(np.mean(f1s))
    evaluation.plot_confusion(m["confusion"], ("a", "b", "c"), tmp_path / "cm.png", True, "t")
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    table = evaluation.per_class_markdown(m, {"a": (0.1, 0.2, 0.3)})
    assert "| a | 0.50 | 0.50 | 0.50 | 2 | 0.10 | 0.20 | 0.30 |" in table
