"""DVC stage `evaluate@<run>`: score a trained run on its test split."""

from __future__ import annotations

from pathlib import Path

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.errors import EmorecError


def run(dataset: str, model: str, balance: str, params: dict | None = None,
        root: Path | None = None) -> Path:
    import mlflow

    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.evaluation import metrics as evaluation
    from emorec.evaluation import scoring
    from emorec.experiments import tracking
    from emorec.models.loading import load_model

    params = params or load_params()
    paths = Paths(root or project_root())
    grid.check_names(params, dataset, model, balance)
    run_name = paths.run_name(dataset, model, balance)
    out_dir = paths.evaluation_dir(dataset, model, balance)
    metrics_path = paths.metrics(dataset, model, balance)
    keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
    _publish_training_figures(paths.model_dir(dataset, model, balance) / "training",
                              paths.training_dir(dataset, model, balance))
    spec = InputSpec.from_dict(meta["input_spec"])
    x_test, y_test, classes = prepared.load_part(paths.prepared(dataset), "test")
    if tuple(classes) != spec.classes:
        raise EmorecError(f"model classes {spec.classes} differ from the test data's {classes}")
    def predict(faces):
        return keras_model.predict(to_model_input(faces, spec), batch_size=256, verbose=0)

    probs = predict(x_test)
    pred = probs.argmax(1)
    metrics = evaluation.compute_metrics(y_test, pred, classes)
    x_val, y_val, _ = prepared.load_part(paths.prepared(dataset), "val")
    settings = params.get("evaluate") or {}
    extra = scoring.score(predict, x_val, y_val, x_test, y_test, probs, prepared.load_ids(paths.prepared(dataset), "test"),
                          classes, settings.get("tta"), list(settings.get("face_sizes") or []),
                          out_dir / "reliability.png", f"{run_name}: test reliability")
    temperature = extra["calibration"]["temperature"]
    evaluation.plot_confusion(metrics["confusion"], classes, out_dir / "confusion_counts.png",
                              normalize=False, title=f"{run_name}: test confusion (counts)")
    evaluation.plot_confusion(metrics["confusion"], classes, out_dir / "confusion_normalized.png",
                              normalize=True, title=f"{run_name}: test confusion (row-normalized)")
    files.write_text(out_dir / "predictions.csv", "actual,predicted\n" + "".join(
        f"{classes[a]},{classes[p]}\n" for a, p in zip(y_test, pred)))
    from emorec.reporting import paper

    key = (dataset, model, balance)
    files.write_text(out_dir / "classification.md",
                  f"# {run_name}: test split, per class\n\n"
                  f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
                  f"n = {metrics['n']}\n\n"
                  + evaluation.per_class_markdown(metrics, paper.PER_CLASS.get(key))
                  + (f"\n\nPaper columns: the paper's {paper.PER_CLASS_TABLE[key]}.\n"
                     if key in paper.PER_CLASS else "\n"))
    protocol = grid.protocol_for(params, dataset)
    if grid.is_combined(params, dataset):
        fetch_cfg, test_set = {}, "each source's own test split (per source: `subsets`)"
    else:
        fetch_cfg = section(params, "fetch", grid.base_dataset(params, dataset))
        mod = runs.dataset_adapter(params, dataset)
        test_set = ("official " + "+".join(getattr(mod, "PAPER_TEST_SPLITS", ("test",)))
                    if protocol == "paper" else "official test")
    provenance = {
        "run_name": run_name, "dataset": dataset, "model": model, "balance": balance,
        "data": f"{dataset} (" + (f"max {fetch_cfg['max_per_class']} per class"
                                  if fetch_cfg.get("max_per_class") else "complete") + ")",
        "input": f"{meta['input_spec']['size']}px x {meta['input_spec']['channels']} channel(s)",
        "protocol": protocol, "test_set": test_set, "seed": section(params, "seed"),
        "epochs": meta.get("epochs", section(params, "train", "epochs")), "epochs_run": meta["epochs_run"],
        "best_epoch": meta["best_epoch"], "weights": meta["weights"], "n_train": meta["n_train"],
        "max_train_images": meta.get("max_train_images"), "params_total": meta.get("params_total"),
        "grid_scope": grid.profile(params),
        "train_seconds": meta["train_seconds"], "hardware": tracking.hardware(),
        "git_commit": tracking.git_commit(paths.root), "mlflow_run_id": meta["run_id"],
        "train_data_fingerprint": meta["train_data_fingerprint"],
    }
    provenance["evaluate"] = {"tta": settings.get("tta"), "face_sizes": settings.get("face_sizes"),
                              "temperature_fitted_on": "validation split"}
    files.write_json(out_dir / "evaluation.json",
                  {"test": metrics, "validation": meta["val_metrics"], **extra, "provenance": provenance})
    headline = {
        "test": {k: round(metrics[k], 4) for k in ("accuracy", "macro_f1", "weighted_f1")},
        "validation": {k: round(meta["val_metrics"][k], 4) for k in ("accuracy", "macro_f1")},
        "calibration": {"temperature": temperature, "ece_test_raw": extra["calibration"]["ece"]["test_raw"],
                        "ece_test": extra["calibration"]["ece"]["test_scaled"]},
    }
    if "tta" in extra:
        headline["test_tta"] = {k: extra["tta"][k] for k in ("accuracy", "macro_f1")}
    for name, sub in extra["subsets"].items():
        headline["test"][f"accuracy_{name}"] = sub["accuracy"]
    files.write_json(metrics_path, headline)

    tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    with mlflow.start_run(run_id=meta["run_id"]):
        mlflow.log_metrics({"test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"],
                            "test_weighted_f1": metrics["weighted_f1"]})
        mlflow.log_metrics({f"test_f1_{c}": m["f1"] for c, m in metrics["per_class"].items()})
        mlflow.log_metrics({"temperature": temperature, "test_ece_raw": extra["calibration"]["ece"]["test_raw"],
                            "test_ece": extra["calibration"]["ece"]["test_scaled"],
                            **({"test_accuracy_tta": extra["tta"]["accuracy"]} if "tta" in extra else {}),
                            **{f"test_accuracy_{n}": v["accuracy"] for n, v in extra["subsets"].items()},
                            **{f"test_accuracy_face_{k}px": v for k, v in extra["face_size"].items()}})
        # the temperature travels with the model: register, export and inference read it here
        mlflow.log_dict({**spec.to_dict(), "temperature": temperature}, "preprocessing.json")
        mlflow.log_artifacts(str(out_dir), artifact_path="evaluation")
        mlflow.set_tag("evaluated_by", tracking.dvc_stage(f"evaluate@{run_name}"))
    print(f"{run_name}: test accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f} "
          f"(n={metrics['n']}); ECE {extra['calibration']['ece']['test_raw']:.3f} -> "
          f"{extra['calibration']['ece']['test_scaled']:.3f} at T={temperature:.2f}"
          + (f"; {extra['tta']['views']} TTA {extra['tta']['accuracy']:.4f}" if "tta" in extra else "")
          + f" -> {metrics_path.relative_to(paths.root)}")
    return metrics_path


def _publish_training_figures(source: Path, target: Path) -> None:
    """The training curves, validation confusion and epoch log the model folder carries,
    copied to reports/training/<run>/ where people look (and `dvc plots` reads)."""
    import shutil

    wanted = ("curves.png", "val_confusion.png", "history.csv")
    missing = [name for name in wanted if not (source / name).is_file()]
    if missing:
        raise EmorecError(f"{source}: missing {', '.join(missing)}; re-run the train stage")
    target.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        shutil.copyfile(source / name, target / f".{name}.tmp")
        (target / f".{name}.tmp").replace(target / name)
