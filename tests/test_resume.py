"""A training killed with SIGKILL resumes on re-run from its last finished epoch, ends with
the planned number of epochs, continues its MLflow run, and never leaves half-written
outputs; a work folder left by other settings is not resumed."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml
from test_training_tracking import tiny_project  # noqa: F401  (the fixture)

from emorec import files
from emorec.stages import fetch, prepare, validate
from emorec.training import resume

TRAIN = '''
import os, signal, sys, yaml
from pathlib import Path
from emorec.training import fit
from emorec.stages import train

root, kill_after = Path(sys.argv[1]), int(sys.argv[2])
params = yaml.safe_load((root / "params.yaml").read_text())
if kill_after:                     # the test's stand-in for a machine that dies mid-run
    original = fit._MlflowEpochLogger

    class Killer:
        def __new__(cls):
            logger = original()
            logged = logger.on_epoch_end

            def on_epoch_end(epoch, logs=None):
                logged(epoch, logs)
                if epoch + 1 == kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)
            logger.on_epoch_end = on_epoch_end
            return logger
    fit._MlflowEpochLogger = Killer
train.run("fer2013", "cnn", "balanced", params, root)
'''


def test_a_killed_training_resumes_where_it_stopped(tiny_project, tmp_path):  # noqa: F811
    import mlflow

    root, params = tiny_project
    params["train"]["epochs"] = 4
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    fetch.run("fer2013", params, root)
    validate.run("fer2013", params, root)
    prepare.run("fer2013", params, root)
    script = tmp_path / "train_once.py"
    script.write_text(TRAIN)
    out_dir = root / "models" / "fer2013" / "cnn-balanced"
    work = root / "models" / "fer2013" / ".cnn-balanced.work"

    killed = subprocess.run([sys.executable, str(script), str(root), "2"], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert not out_dir.exists()                          # nothing half-written for DVC to hash
    assert resume.finished_epochs(work) == 2
    first_run = files.read_json(work / "resume.json")["run_id"]

    again = subprocess.run([sys.executable, str(script), str(root), "0"], capture_output=True, text=True,
                           env=os.environ.copy(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after epoch 2 of 4" in again.stdout
    meta = files.read_json(out_dir / "run.json")
    assert meta["epochs_run"] == 4 and meta["run_id"] == first_run and not work.exists()
    history = (out_dir / "training" / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["0", "1", "2", "3"]
    run = mlflow.get_run(first_run)
    assert run.info.status == "FINISHED" and run.data.tags["resumed_after_epoch"] == "2"
    steps = [m.step for m in mlflow.MlflowClient().get_metric_history(first_run, "val_accuracy")]
    assert steps == [1, 2, 3, 4]
    assert {"curves.png", "val_confusion.png", "history.csv"} <= {p.name for p in (out_dir / "training").iterdir()}
    assert meta["weight_average"] is None


def test_a_killed_run_with_weight_averaging_resumes_with_its_average(tiny_project, tmp_path):  # noqa: F811
    """swa_epochs 2 of 4, killed after epoch 3 (the first averaged one): the resumed run
    loads that epoch's share of the average from the work folder instead of dropping it."""
    root, params = tiny_project
    params["train"].update(epochs=4, swa_epochs=2, early_stopping_patience=None)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    for stage in (fetch, validate, prepare):
        stage.run("fer2013", params, root)
    script = tmp_path / "train_once.py"
    script.write_text(TRAIN)
    work = root / "models" / "fer2013" / ".cnn-balanced.work"
    killed = subprocess.run([sys.executable, str(script), str(root), "3"], capture_output=True, text=True,
                            env=os.environ.copy(), timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert (work / "swa.npz").is_file() and resume.finished_epochs(work) == 3
    again = subprocess.run([sys.executable, str(script), str(root), "0"], capture_output=True, text=True,
                           env=os.environ.copy(), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after epoch 3 of 4" in again.stdout and "weight average of epochs [3, 4]" in again.stdout
    meta = files.read_json(root / "models" / "fer2013" / "cnn-balanced" / "run.json")
    assert meta["weight_average"]["epochs"] == [3, 4] and meta["weight_average"]["applied"]
    assert 0 <= meta["weight_average"]["last_epoch_raw"]["val_accuracy"] <= 1
    assert meta["weight_average"]["chosen"] == (meta["best_epoch"] == 4) and not work.exists()


def test_a_work_folder_from_other_settings_is_not_resumed(tmp_path):
    work = tmp_path / ".run.work"
    folder, left = resume.work_folder(work, "run", "key-a")
    assert left is None and folder == work
    files.write_json(work / "resume.json", {"key": "key-a", "run_id": "r1"})
    (work / "history.csv").write_text("epoch,loss\n0,1.0\n1,0.9\n2,0.8\n")
    assert resume.work_folder(work, "run", "key-a")[1]["run_id"] == "r1"
    resume.truncate_history(work / "history.csv", 2)
    assert resume.read_history(work / "history.csv") == {"loss": [1.0, 0.9]}
    folder, left = resume.work_folder(work, "run", "key-b")      # settings changed: start over
    assert left is None and list(folder.iterdir()) == []
