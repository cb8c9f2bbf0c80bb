"""The whole DVC DAG on a tiny subset of the real FER2013 (30 images per class, 1 epoch),
run in a scratch copy of the repository so the real results are never overwritten."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, SHARED, needs_shared

from emorec import sandbox


def _sh(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
@pytest.mark.integration
@needs_shared()
def test_dvc_repro_on_a_tiny_subset(tmp_path):
    dvc = shutil.which("dvc")
    assert dvc, "dvc must be installed (pip install -e .)"
    work = tmp_path / "repo"
    params = sandbox.create(REPO, work, SHARED)
    env = sandbox.clean_env()

    _sh([dvc, "repro"], work, env)
    trained = [f"{d}/{m}-{b}" for d in params["grid"]["datasets"] for m in params["grid"]["models"]
               for b in params["grid"]["balance"] if (work / "models" / d / f"{m}-{b}" / "model.keras").exists()]
    assert "fer2013/cnn-plain" in trained and "affectnet_pca/cnn-balanced" in trained
    for rel in ("data/cache/fer2013.npz", "reports/validation/affectnet.md",
                "reports/figures/fer2013_balancing.png", "reports/figures/affectnet_pca_samples.png",
                "metrics/fer2013-cnn-plain.json",
                "reports/evaluation/affectnet_pca-cnn-balanced/confusion_normalized.png",
                "reports/results.md", "mlflow.db", "reports/model_cards/emorec-fer2013.md",
                "reports/export/fer2013.md", "models/export/fer2013/model.onnx", "reports/detectors.md",
                "reports/infer/video.mp4", "reports/infer/frames.jsonl", "reports/infer/timeline.png",
                "reports/crossval/crossval.md", "metrics/crossval.json", "reports/seeds/seeds.md",
                "reports/cross_dataset.md", "reports/explain/fer2013-cnn-plain/gradcam.png",
                "reports/explain/fer2013-custom_mobilenet-plain/feature_maps.png"):
        assert (work / rel).exists(), rel
    registry = json.loads((work / "reports" / "registry" / "fer2013.json").read_text())
    assert registry["promoted"] and registry["reason"] == "no champion yet"
    assert "skipped" in json.loads((work / "reports" / "registry" / "rafdb.json").read_text())
    again = _sh([dvc, "repro"], work, env)
    assert "Data and pipelines are up to date" in again.stdout
    shown = _sh([dvc, "metrics", "show", "--json"], work, env)
    assert "test" in shown.stdout and "accuracy" in shown.stdout
    import sqlite3

    with sqlite3.connect(work / "mlflow.db") as db:
        runs = db.execute("select count(*) from runs").fetchone()[0]
        models = db.execute("select count(*) from logged_models").fetchone()[0]
    # grid runs, plus the studies: crossval parent + 2 folds, seeds parent + 1 extra seed
    assert runs == len(trained) + 3 + 2 and models == len(trained) + 2 + 1
    weights = json.loads((work / "models" / "fer2013" / "custom_mobilenet-plain" / "run.json").read_text())
    assert weights["weights"] == "scratch" and "mobilenet_1_0_224_tf_no_top.h5" in weights["weights_note"]
