"""The whole DVC DAG on a tiny subset of the real FER2013 (30 images per class, 1 epoch),
run in a scratch copy of the repository so the real results are never overwritten."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, SHARED, needs_shared

from emorec import sandbox


def _sh(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=1800)
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
    env = sandbox.clean_env(work)
    stages = _sh([dvc, "stage", "list"], work, env).stdout
    assert "train@fer2013-cnn-plain" in stages and "rafdb-" not in stages  # only runs that train

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
                "reports/distill/distill.json", "reports/distill/reliability.png",
                "models/fer2013/cnn-distilled/model.keras", "models/fer2013/cnn-distilled/training/history.csv",
                "reports/cross_dataset.md", "reports/explain/fer2013-cnn-plain/gradcam.png",
                "reports/explain/affectnet_pca-custom_mobilenet-plain/feature_maps.png",
                "reports/combine.json", "metrics/combined-cnn-plain.json", "reports/evaluation/combined-cnn-plain/reliability.png"):
        assert (work / rel).exists(), rel
    registry = json.loads((work / "reports" / "registry" / "fer2013.json").read_text())
    assert registry["promoted"] and registry["reason"] == "no champion yet"
    results = (work / "reports" / "results.md").read_text()
    assert "**Needs the rafdb data**" in results
    assert "| fer2013-cnn-plain | " in results[results.index("## Noise over seeds"):]   # the seeds study's mean +- std
    assert "| fer2013-cnn-distilled | " in results[results.index("## Distilled from the seeds ensemble"):]
    candidates = [c["run"] for c in registry["candidates"]]
    assert "fer2013-cnn-distilled" in candidates and "fer2013-cnn-plain" in candidates   # validation decides
    again = _sh([dvc, "repro"], work, env)
    assert "Data and pipelines are up to date" in again.stdout
    # one dataset's own training settings re-run that dataset's trainings, not the others'
    import yaml

    edited = yaml.safe_load((work / "params.yaml").read_text())
    edited["train_overrides"]["affectnet_pca"] = {"epochs": 2}
    (work / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
    stale = _sh([dvc, "status", "--json"], work, env).stdout
    assert "train@affectnet_pca-cnn-balanced" in stale and "train@fer2013-cnn-plain" not in stale
    assert "train@combined-cnn-plain" not in stale and '"seeds"' not in stale   # seeds: FER2013
    shown = _sh([dvc, "metrics", "show", "--json"], work, env)
    assert "test" in shown.stdout and "accuracy" in shown.stdout
    import sqlite3

    with sqlite3.connect(work / "mlflow.db") as db:
        runs = db.execute("select count(*) from runs").fetchone()[0]
        models = db.execute("select count(*) from logged_models").fetchone()[0]
    # grid runs, plus the studies: crossval parent + 2 folds, seeds parent + 1 extra seed, the
    # distilled student; logged models: one per trained run and study fit, plus the served
    # pyfunc `register` logs for each dataset it registers
    registered = [p for p in (work / "reports" / "registry").glob("*.json") if "skipped" not in json.loads(p.read_text())]
    assert runs == len(trained) + 3 + 2 + 1 and models == len(trained) + 2 + 1 + 1 + len(registered)
    assert len(registered) == 3   # fer2013, affectnet_pca and combined; rafdb has no data
    combined = json.loads((work / "reports" / "evaluation" / "combined-cnn-plain" / "evaluation.json").read_text())
    assert set(combined["subsets"]) >= {"fer2013", "affectnet", "PrivateTest"}   # each source's own test faces
    transfer = (work / "reports" / "cross_dataset.md").read_text()
    assert "combined-cnn-plain" in transfer and "faces centre-cropped to" in transfer   # framing chosen on validation
    assert "the class prior moved to its validation split's class mix" in transfer      # params' class_mix: true
    chosen = json.loads((work / "reports" / "default_model.json").read_text())   # infer.model: auto
    assert chosen["model"] in chosen["scores"] and len(chosen["scores"]) == 3
    assert json.loads((work / "reports" / "infer" / "summary.json").read_text())["model"] == chosen["model"]
    weights = json.loads((work / "models" / "affectnet_pca" / "custom_mobilenet-plain" / "run.json").read_text())
    assert weights["weights"] == "scratch" and "mobilenet_1_0_224_tf_no_top.h5" in weights["weights_note"]


TOY_MODEL = '''"""A toy architecture, added by a test as a user would: this module plus a params block."""

from emorec.models import ModelSpec, register
from emorec.models.parts import softmax_output


def build(input_shape, num_classes, units=8):
    import keras

    inputs = keras.Input(input_shape)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(units, 3, activation="relu")(inputs))
    return keras.Model(inputs, softmax_output(x, num_classes), name="toy")


register(ModelSpec("toy", build, min_input_size=8, description="a toy test model"))
'''


@pytest.mark.slow
@pytest.mark.integration
@needs_shared()
def test_a_new_model_is_its_module_plus_a_params_block(tmp_path):
    dvc = shutil.which("dvc")
    work = tmp_path / "repo"

    def add_toy(params, folder):
        (folder / "src" / "emorec" / "models" / "toy.py").write_text(TOY_MODEL)
        params["models"]["toy"] = {"optimizer": "adam", "learning_rate": 0.01, "arch": {"units": 4}}
        params["grid"].update({"datasets": ["fer2013"], "models": ["toy"], "balance": ["plain"]})

    sandbox.create(REPO, work, SHARED, per_class=20, edit=add_toy)
    changed = sorted(rel for rel in sandbox.project_files(work)
                     if not (REPO / rel).is_file() or (REPO / rel).read_bytes() != (work / rel).read_bytes())
    assert changed == ["grid.yaml", "params.yaml", "src/emorec/models/toy.py"], changed
    env = sandbox.clean_env(work)
    _sh([dvc, "repro", "evaluate@fer2013-toy-plain"], work, env)
    metrics = json.loads((work / "metrics" / "fer2013-toy-plain.json").read_text())
    assert 0 <= metrics["test"]["accuracy"] <= 1
    listed = _sh([sys.executable, "-m", "emorec.cli", "models"], work, env).stdout
    assert "toy: a toy test model" in listed
