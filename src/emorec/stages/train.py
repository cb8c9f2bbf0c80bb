"""DVC stage `train@<run>`: train one run of the active profile and log it to MLflow."""

from __future__ import annotations

from pathlib import Path

from emorec import grid
from emorec.config import Paths, flatten, load_params, project_root, section
from emorec.data import prepared


def run(dataset: str, model: str, balance: str, params: dict | None = None,
        root: Path | None = None) -> Path:
    from emorec.experiments import tracking
    from emorec.training import fit as training
    from emorec.training import sampling

    params = params or load_params()
    paths = Paths(root or project_root())
    grid.check_names(params, dataset, model, balance)
    seed = int(section(params, "seed"))
    model_params = dict(section(params, "models", model))
    scope = grid.profile(params)
    cfg = training.TrainConfig.from_params(section(params, "train"), model_params, seed, dataset, scope,
                                          params.get("train_overrides"))
    overrides = ((params.get("train_overrides") or {}).get(dataset) or {}) if scope != "gpu" else {}
    cfg.verbose = int((params.get("console") or {}).get("keras_verbose", 2))
    data_dir = paths.prepared(dataset)
    run_name = paths.run_name(dataset, model, balance)
    x_train, y_train, classes = prepared.load_part(data_dir, prepared.train_part(balance))
    sources = sampling.part_sources(data_dir, prepared.train_part(balance), len(y_train)) if cfg.source_prior else None
    x_val, y_val, _ = prepared.load_part(data_dir, "val")
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    stage_name = tracking.dvc_stage(f"train@{run_name}")
    log_params = {
        "dataset": dataset, "model": model, "balance": balance, "seed": seed,
        **{f"train.{k}": v for k, v in flatten(section(params, "train")).items()},
        **{f"model.{k}": v for k, v in flatten(model_params).items()},
        **{f"train_overrides.{k}": v for k, v in flatten(overrides).items()},
        **{f"prepare.{k}": v for k, v in flatten(section(params, "prepare")).items()},
        **({f"combine.{k}": v for k, v in flatten(section(params, "combine")).items()}
           if grid.is_combined(params, dataset) else
           {f"fetch.{k}": v for k, v in flatten(section(params, "fetch", grid.base_dataset(params, dataset))).items()}),
        "validate.duplicates": section(params, "validate", "duplicates"),
        "n_train": len(y_train), "n_val": len(y_val),
    }
    tags = {"dataset": dataset, "model": model, "balance": balance, "grid_scope": scope,
            "git_commit": tracking.git_commit(paths.root), "dvc_stage": stage_name,
            "hardware": tracking.hardware()}
    out_dir = paths.model_dir(dataset, model, balance)
    work_dir = out_dir.parent / f".{out_dir.name}.work"   # outside the outputs; kept if killed, to resume
    # the figures go inside the model folder (evaluate copies them to reports/training/): a
    # stage whose outputs are all cached can be restored from DVC's run-cache by another worker
    result = training.train(
        model_name=model, arch=training.model_arch(model_params, scope), cfg=cfg,
        train_images=x_train, train_labels=y_train, val_images=x_val, val_labels=y_val,
        classes=classes, out_dir=out_dir, curves_dir=work_dir / "training", run_name=run_name,
        experiment_id=experiment_id, log_params=log_params, tags=tags, work_dir=work_dir,
        train_sources=sources)
    print(f"{run_name}: best validation accuracy {result.val_metrics['accuracy']:.4f}, macro-F1 "
          f"{result.val_metrics['macro_f1']:.4f} at epoch {result.best_epoch}/{result.epochs_run} "
          f"({result.seconds / 60:.1f} min, {result.images_per_second:.0f} img/s); "
          f"MLflow run {result.run_id}")
    return result.model_path
