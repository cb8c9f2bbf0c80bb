"""DVC stage `crossval`: stratified k-fold cross-validation of one model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files, grid
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared


def run(params: dict | None = None, root: Path | None = None) -> Path:
    """Stratified k-fold cross-validation of one model on one dataset's training split."""
    import mlflow

    from emorec.experiments import tracking
    from emorec.training import fit as training
    from emorec.training import studies

    params = params or load_params()
    paths = Paths(root or project_root())
    cv = section(params, "crossval")
    dataset, model, balance, k = cv["dataset"], cv["model"], cv.get("balance", "plain"), int(cv["folds"])
    grid.check_names(params, dataset, model, balance)
    seed = int(section(params, "seed"))
    out = paths.root / "reports" / "crossval" / "crossval.json"
    metrics_path = paths.root / "metrics" / "crossval.json"
    name = f"crossval-{dataset}-{model}-{balance}-k{k}"
    reason = prepared.missing_reason(paths.prepared(dataset))
    if reason:
        files.write_json(out, {"skipped": reason, "name": name})
        files.write_text(out.with_suffix(".md"), f"# {name}\n\nNot run: {reason}\n")
        files.write_json(metrics_path, {"skipped": 1})
        print(f"{name}: skipped ({reason})")
        return out
    x, y, classes = prepared.load_part(paths.prepared(dataset), "train_balanced" if balance == "balanced" else "train")
    keep = training.subsample(y, cv.get("max_images"), seed)
    x, y = x[keep], y[keep]
    folds = studies.stratified_folds(y, k, seed)
    cfg, arch = studies.study_config(params, dataset, model, seed, {"epochs": int(cv["epochs"]),
                                                              "max_train_images": None})
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    common_tags = {"dataset": dataset, "model": model, "balance": balance, "study": "crossval",
                   "git_commit": tracking.git_commit(paths.root), "hardware": tracking.hardware(),
                   "dvc_stage": tracking.dvc_stage("crossval")}
    parent = studies.study_parent(experiment_id, name, {"folds": k, "images": len(y), "epochs": cfg.epochs,
                                                 "inner_val_fraction": cv["inner_val_fraction"],
                                                 "seed": seed}, common_tags)
    results = []
    for i, held_out in enumerate(folds):
        rest = np.setdiff1d(np.arange(len(y)), held_out)
        fit, val = studies.inner_split(y[rest], float(cv["inner_val_fraction"]), seed + i)
        fit, val = rest[fit], rest[val]
        print(f"{name}: fold {i + 1}/{k}: train {len(fit)}, inner validation {len(val)}, held out {len(held_out)}")
        results.append({"fold": i + 1, **studies.train_and_score(
            model_name=model, arch=arch, cfg=cfg, x_fit=x[fit], y_fit=y[fit], x_val=x[val], y_val=y[val],
            x_score=x[held_out], y_score=y[held_out], classes=classes, run_name=f"{name}-fold{i + 1}",
            experiment_id=experiment_id, log_params={"fold": i + 1, "folds": k, "n_fit": len(fit)},
            tags={**common_tags, "mlflow.parentRunId": parent, "fold": str(i + 1)})})
    summary = studies.Summary(results).to_dict()
    with mlflow.start_run(run_id=parent):
        mlflow.log_metrics({"cv_accuracy_mean": summary["accuracy"]["mean"],
                            "cv_accuracy_std": summary["accuracy"]["std"],
                            "cv_macro_f1_mean": summary["macro_f1"]["mean"],
                            "cv_macro_f1_std": summary["macro_f1"]["std"]})
    record = {"name": name, "dataset": dataset, "model": model, "balance": balance, "folds": k,
              "images": int(len(y)), "epochs": cfg.epochs, "seed": seed,
              "input_size": cfg.input_size, "weights": "see runs (MLflow tag weights)",
              "mlflow_parent_run_id": parent, "hardware": tracking.hardware(),
              "git_commit": tracking.git_commit(paths.root), **summary}
    files.write_json(out, record)
    from emorec.reporting import tables as report

    files.write_text(out.with_suffix(".md"), report.crossval_markdown(record))
    files.write_json(metrics_path, {"accuracy_mean": round(summary["accuracy"]["mean"], 4),
                                 "accuracy_std": round(summary["accuracy"]["std"], 4),
                                 "macro_f1_mean": round(summary["macro_f1"]["mean"], 4),
                                 "macro_f1_std": round(summary["macro_f1"]["std"], 4)})
    print(f"{name}: accuracy {summary['accuracy']['mean']:.4f} +- {summary['accuracy']['std']:.4f}, "
          f"macro-F1 {summary['macro_f1']['mean']:.4f} +- {summary['macro_f1']['std']:.4f}")
    return out
