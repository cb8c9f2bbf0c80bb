"""The whole DVC DAG on a tiny subset of the real FER2013 (30 images per class, 1 epoch),
run in a scratch copy of the repository so the real results are never overwritten."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import REPO, SHARED, needs_shared


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if (REPO / f).is_file()]


def _absolute_shared(node):
    if isinstance(node, dict):
        return {k: _absolute_shared(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_shared(v) for v in node]
    if isinstance(node, str) and node.startswith("../shared"):
        return node.replace("../shared", str(SHARED), 1)
    return node


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
    for rel in _tracked_files():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, work / rel)
    for generated in ("dvc.lock", "metrics", "reports"):
        path = work / generated
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    params = yaml.safe_load((work / "params.yaml").read_text())
    params = _absolute_shared(params)  # ../shared is relative to the real checkout
    for block in params["fetch"].values():
        block.update({"max_per_class": 30, "kaggle_download": False})
    params["train"]["epochs"] = 1
    # two architectures cover the DAG's paths (a flat CNN, a features + head model with the
    # offline weights fallback); tests/test_model_zoo.py builds, trains and round-trips every
    # registered model. A ViT here could win the registry and make export (TFLite, ONNX,
    # SavedModel of 88 M parameters) the slowest, most memory-hungry step of CI.
    params["grid"]["models"] = ["cnn", "custom_mobilenet"]
    for name in params["models"]:
        cpu = params["models"][name].get("cpu") or {}
        cpu["epochs"] = 1
        cpu.pop("max_train_images", None)
        if params["models"][name].get("weights"):
            params["models"][name]["allow_download"] = False   # offline: the scratch fallback
    params["crossval"].update({"folds": 2, "epochs": 1, "max_images": 60})
    params["seeds"]["values"] = [params["seed"], 7]
    params["seeds"]["runs"] = ["fer2013/cnn/plain"]
    params["explain"]["per_class"] = 1
    params["train"]["overrides"] = {}
    params["export"].update({"parity_images": 100, "latency_runs": 5,
                             # a 1-epoch model's near-uniform probabilities make quantized top-1
                             # flips expected; the float formats keep the real threshold
                             "min_agreement": {"float": 0.999, "quantized": 0.0}})
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "EMOREC_"))}
    env.update({"GIT_AUTHOR_NAME": "smoke", "GIT_AUTHOR_EMAIL": "smoke@example.invalid",
                "GIT_COMMITTER_NAME": "smoke", "GIT_COMMITTER_EMAIL": "smoke@example.invalid"})
    _sh(["git", "init", "-q"], work, env)
    _sh(["git", "add", "-A"], work, env)
    _sh(["git", "commit", "-qm", "smoke"], work, env)

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
