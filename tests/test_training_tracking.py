"""fetch -> validate -> prepare -> train -> evaluate in-process on generated data, logged
to a temporary sqlite MLflow store: what a user finds in the MLflow UI afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from conftest import REPO, fer_records, write_image_zip

from emorec import files
from emorec.errors import EmorecError
from emorec.stages import distill, evaluate, fetch, pca, prepare, report, seeds, train, validate


@pytest.fixture
def tiny_project(tmp_path, monkeypatch):
    source = write_image_zip(tmp_path / "fer.zip", fer_records(per_class=6))
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["fetch"]["fer2013"].update({"path": str(source), "search": [], "kaggle_download": False,
                                       "max_per_class": 6})
    params["train"].update({"epochs": 2, "batch_size": 16})
    params["console"] = {"keras_verbose": 0}
    params["grid"].update({"datasets": ["fer2013"], "models": ["cnn"], "balance": ["balanced"],
                           "profile": "full"})
    params["models"]["cnn"]["arch"].update({"filters": [8, 16], "dense_units": 32})
    root = tmp_path / "proj"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("DVC_STAGE", "train@fer2013-cnn-balanced")
    return root, params


def test_pipeline_functions_log_a_complete_mlflow_run(tiny_project):
    import mlflow

    root, params = tiny_project
    fetch.run("fer2013", params, root)
    validate.run("fer2013", params, root)
    prepare.run("fer2013", params, root)
    prep = files.read_json(root / "reports" / "prepare" / "fer2013.json")
    assert sum(prep["test"].values()) == 7 * 12  # PublicTest + PrivateTest, never augmented
    assert prep["augmented_images"] >= 0
    train.run("fer2013", "cnn", "balanced", params, root)
    evaluate.run("fer2013", "cnn", "balanced", params, root)

    meta = files.read_json(root / "models" / "fer2013" / "cnn-balanced" / "run.json")
    run = mlflow.get_run(meta["run_id"])
    assert run.data.params["model.optimizer"] == "rmsprop"
    assert run.data.params["train.epochs"] == "2"
    assert run.data.tags["dvc_stage"] == "train@fer2013-cnn-balanced"
    assert run.data.tags["weights"] == "scratch"
    assert run.data.tags["train_data_fingerprint"] == meta["train_data_fingerprint"]
    assert "git_commit" in run.data.tags
    history = mlflow.MlflowClient().get_metric_history(run.info.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2]
    for key in ("test_accuracy", "test_macro_f1", "val_macro_f1"):
        assert key in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id, "evaluation")}
    assert "evaluation/confusion_counts.png" in artifacts

    logged = mlflow.keras.load_model(meta["model_uri"])
    x = np.random.default_rng(0).random((3, 48, 48, 1)).astype("float32")
    assert logged.predict(x, verbose=0).shape == (3, 7)
    info = mlflow.models.get_model_info(meta["model_uri"])
    assert info.signature is not None and info.saved_input_example_info is not None

    metrics = files.read_json(root / "metrics" / "fer2013-cnn-balanced.json")
    assert {"test", "validation", "calibration"} <= set(metrics)
    assert 0 <= metrics["test"]["accuracy"] <= 1
    # the temperature fitted on validation travels with the model in its MLflow run
    carried = mlflow.artifacts.load_dict(f"runs:/{run.info.run_id}/preprocessing.json")
    assert carried["temperature"] == metrics["calibration"]["temperature"]
    assert 0.05 <= carried["temperature"] <= 20 and carried["classes"]
    evaluation = files.read_json(root / "reports" / "evaluation" / "fer2013-cnn-balanced" / "evaluation.json")
    assert evaluation["calibration"]["fitted_on"] == "validation" and evaluation["calibration"]["bins"] == 15
    assert (root / "reports" / "evaluation" / "fer2013-cnn-balanced" / "reliability.png").is_file()
    assert "test_ece" in mlflow.get_run(run.info.run_id).data.metrics
    # the seeds study reuses the grid run, scored from its model alone: the same figures as evaluate's
    params["seeds"] = {"dataset": "fer2013", "model": "cnn", "balance": "balanced", "values": [42, 7]}
    params["train"]["source_prior"] = "shared"   # the study hands its faces' sources on (one here: weights of 1)
    seeds.run(params, root)
    params["train"]["source_prior"] = None
    study = files.read_json(root / "reports" / "seeds" / "seeds.json")["runs"][0]
    reused = next(r for r in study["runs"] if r["source"] == "grid run")
    assert reused["accuracy"] == pytest.approx(evaluation["test"]["accuracy"])
    assert reused["macro_f1"] == pytest.approx(evaluation["test"]["macro_f1"])
    assert evaluation["subsets"] and reused["subsets"] == evaluation["subsets"]   # PrivateTest, PublicTest
    assert reused["run_id"] == meta["run_id"] and len(study["runs"]) == 2
    # the student distilled from the study's two members: a grid run's folder and record
    params["distill"]["epochs"] = 1
    distill.run(params, root)
    student = files.read_json(root / "models" / "fer2013" / "cnn-distilled" / "run.json")
    record = files.read_json(root / "reports" / "distill" / "distill.json")
    assert record["teacher"]["members"] == [str(root / "models" / "fer2013" / "cnn-balanced" / "model.keras"),
                                            f"runs:/{study['runs'][1]['run_id']}/model"]
    assert record["provenance"]["mlflow_run_id"] == student["run_id"] and record["provenance"]["epochs_run"] == 1
    assert {"calibration", "subsets", "test", "validation"} <= set(record)
    assert mlflow.get_run(student["run_id"]).data.tags["study"] == "distill"
    assert (root / "models" / "fer2013" / "cnn-distilled" / "training" / "curves.png").is_file()
    report.run(params, root)
    assert "| fer2013-cnn-distilled | " in (root / "reports" / "results.md").read_text()
    text = (root / "reports" / "results.md").read_text()
    assert "0.62" in text  # the paper's Table X CNN figure stands beside ours
    noise = text[text.index("## Noise over seeds"):text.index("## Provenance")]
    assert f"{study['accuracy']['mean']:.4f} +- {study['accuracy']['std']:.4f}" in noise and "[42, 7]" in noise
    (root / "reports" / "seeds" / "seeds.json").unlink()
    with pytest.raises(EmorecError, match=r"seeds\.json: missing; run the seeds stage"):
        report.run(params, root)


def test_missing_optional_dataset_is_reported_through_every_stage(tiny_project):
    root, params = tiny_project
    params["fetch"]["rafdb"].update({"path": None, "env_var": "EMOREC_TEST_NO_SUCH_VAR", "search": []})
    params["pca"]["datasets"] = ["rafdb"]
    params["grid"]["datasets"] = ["rafdb", "rafdb_pca"]
    fetch.run("rafdb", params, root)
    validate.run("rafdb", params, root)
    prepare.run("rafdb", params, root)
    pca.run("rafdb", params, root)
    for rel in ("reports/figures/rafdb_balancing.png", "reports/figures/rafdb_pca_samples.png"):
        assert (root / rel).read_bytes()[:4] == b"\x89PNG", rel
    from emorec import runs

    active, absent = runs.runs(params, root)
    assert active == [] and "rafdb" in absent["rafdb"]   # no train/evaluate stages for it
    with pytest.raises(EmorecError, match="rafdb.*prepared data missing; needs the rafdb data"):
        train.run("rafdb", "cnn", "plain", params, root)
    params["seeds"].update({"dataset": "rafdb", "model": "cnn", "balance": "plain"})
    seeds.run(params, root)   # its study needs the same data: it says so rather than fail
    distill.run(params, root)  # and so does the student it would teach
    assert "not_trained.json" in {f.name for f in (root / "models" / "rafdb" / "cnn-distilled").iterdir()}
    report.run(params, root)
    text = (root / "reports" / "results.md").read_text()
    assert "**Needs the rafdb data**" in text and "0.81" in text  # the paper's RAF-DB figure
    assert "| rafdb-cnn-plain | needs data:" in text[text.index("## Noise over seeds"):]
    assert "| rafdb-cnn-distilled | needs data:" in text[text.index("## Distilled from the seeds ensemble"):]


def test_optional_flag_does_not_hide_a_missing_required_dataset(tiny_project):
    from emorec.errors import DataNotFoundError

    root, params = tiny_project
    params["fetch"]["fer2013"].update({"path": None, "search": [], "env_var": "EMOREC_TEST_NO_SUCH_VAR"})
    with pytest.raises(DataNotFoundError):
        fetch.run("fer2013", params, root)


def test_grid_dataset_names_are_checked(tiny_project):
    root, params = tiny_project
    with pytest.raises(EmorecError, match="unknown dataset 'ckplus'.*configured datasets"):
        train.run("ckplus", "cnn", "plain", params, root)
    with pytest.raises(EmorecError, match="needs 'fer2013' in pca.datasets"):
        train.run("fer2013_pca", "cnn", "plain", params, root)
