"""The pipeline's stages as functions of (params, names). `stages/*.py` and the `emorec`
CLI both call these; DVC runs the former."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from emorec import io
from emorec.config import Paths, flatten, load_params, project_root, section
from emorec.datasets import DatasetCache, adapter, fetch
from emorec.errors import EmorecError

log = logging.getLogger("emorec")
BALANCE_MODES = ("plain", "balanced")


def _check_grid_names(params: dict, dataset: str, model: str | None = None,
                      balance: str | None = None) -> None:
    adapter(dataset)  # raises for an unknown dataset
    if model is not None:
        from emorec import models

        models.get(model)
        if model not in section(params, "models"):
            raise EmorecError(f"params.yaml: no settings under models.{model}")
    if balance is not None and balance not in BALANCE_MODES:
        raise EmorecError(f"unknown balance mode {balance!r}; use one of {BALANCE_MODES}")


def fetch_stage(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    params = params or load_params()
    paths = Paths(root or project_root())
    adapter(dataset)
    cfg = section(params, "fetch", dataset)
    result = fetch(dataset, cfg, paths.root, paths.downloads())
    target = paths.cache(dataset)
    result.cache.save(target)
    counts = {s: sum(result.cache.counts(s).values()) for s in ("train", "val", "test")}
    print(f"{dataset}: {len(result.cache)} images from {result.found_via} "
          f"(official splits: {counts}) -> {target.relative_to(paths.root)}")
    return target


def expected_counts(dataset: str, max_per_class: int | None) -> dict | None:
    known = getattr(adapter(dataset), "EXPECTED_COUNTS", None)
    if known is None:
        return None
    if max_per_class:
        return {s: {c: min(n, max_per_class) for c, n in per.items()} for s, per in known.items()}
    return known


def validate_stage(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    from emorec import validation

    params = params or load_params()
    paths = Paths(root or project_root())
    mod = adapter(dataset)
    cfg = section(params, "validate")
    cache = DatasetCache.load(paths.cache(dataset))
    report = validation.validate(
        cache, dataset, image_size=mod.IMAGE_SIZE, channels=mod.CHANNELS,
        expected_counts=expected_counts(dataset, section(params, "fetch", dataset).get("max_per_class")),
        duplicates_policy=cfg["duplicates"], min_pixel_std=cfg.get("min_pixel_std", 1.0))
    json_path = paths.validation_report(dataset)
    io.write_json(json_path, report.to_dict())
    io.write_text(json_path.with_suffix(".md"), validation.markdown_summary(report, cfg["duplicates"]))
    dup = report.duplicate_summary()
    print(f"{dataset}: {len(report.outcomes)} expectations, {len(report.failures)} failed, "
          f"{len(report.warnings)} warnings; {dup['groups']} duplicate groups "
          f"({dup['cross_split_groups']} across splits) -> {json_path.relative_to(paths.root)}")
    if report.failures:
        raise EmorecError(validation.failure_message(report, json_path))
    return json_path


def prepare_stage(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Split per protocol, apply the duplicate policy, write plain and balanced training sets."""
    from emorec import augment, plots, split

    params = params or load_params()
    paths = Paths(root or project_root())
    mod = adapter(dataset)
    cfg = section(params, "prepare")
    seed = int(section(params, "seed"))
    cache = DatasetCache.load(paths.cache(dataset))
    report_path = paths.validation_report(dataset)
    if not report_path.exists():
        raise EmorecError(f"{report_path}: validation report missing; run the validate stage first")
    groups = io.read_json(report_path)["duplicate_groups"]

    masks = split.make_splits(cache, cfg["protocol"], cfg["val_fraction"], seed,
                              getattr(mod, "PAPER_TEST_SPLITS", ("test",)))
    policy = section(params, "validate", "duplicates")
    train_mask, dropped = split.apply_duplicate_policy(cache, masks, groups, policy)
    train, val, test = cache.subset(train_mask), cache.subset(masks[1]), cache.subset(masks[2])
    aug_cfg = augment.AugmentConfig.from_params(cfg.get("augmentation", {}))
    bal_images, bal_labels, is_aug = augment.balance(
        train.images, train.labels, len(cache.classes), cfg["balance_target"], aug_cfg, seed)

    out = paths.prepared(dataset)
    classes = np.array(cache.classes)
    with io.atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for name, part in (("train", train), ("val", val), ("test", test)):
            with open(tmp / f"{name}.npz", "wb") as fh:
                np.savez(fh, images=part.images, labels=part.labels, source_id=part.source_id,
                         classes=classes)
        with open(tmp / "train_balanced.npz", "wb") as fh:
            np.savez(fh, images=bal_images, labels=bal_labels, augmented=is_aug, classes=classes)

    balanced_counts = {c: int(n) for c, n in zip(cache.classes,
                                                 np.bincount(bal_labels, minlength=len(classes)))}
    summary = {
        "dataset": dataset, "protocol": cfg["protocol"], "val_fraction": cfg["val_fraction"],
        "seed": seed, "duplicates_policy": policy, "dropped_from_train": len(dropped),
        "dropped_source_ids": dropped,
        "train": train.counts(), "val": val.counts(), "test": test.counts(),
        "train_balanced": balanced_counts, "balance_target": cfg["balance_target"],
        "augmented_images": int(is_aug.sum()),
    }
    io.write_json(paths.root / "reports" / "prepare" / f"{dataset}.json", summary)
    plots.class_distribution(
        {"train": train.counts(), "validation": val.counts(), "test": test.counts()},
        paths.root / "reports" / "figures" / f"{dataset}_class_distribution.png",
        f"{dataset}: images per class and split ({cfg['protocol']} protocol)")
    plots.class_distribution(
        {"before balancing": train.counts(), f"after balancing ({cfg['balance_target']})": balanced_counts},
        paths.root / "reports" / "figures" / f"{dataset}_balancing.png",
        f"{dataset}: training set before and after balancing by augmentation")
    print(f"{dataset}: train {len(train)} (dropped {len(dropped)} cross-split duplicates), "
          f"val {len(val)}, test {len(test)}; balanced train {len(bal_labels)} "
          f"(+{int(is_aug.sum())} augmented) -> {out.relative_to(paths.root)}")
    return out


def _load_part(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    path = folder / f"{name}.npz"
    if not path.exists():
        raise EmorecError(f"{path}: prepared data missing; run the prepare stage first")
    data = io.load_npz(path)
    return data["images"], data["labels"], tuple(str(c) for c in data["classes"])


def train_stage(dataset: str, model: str, balance: str, params: dict | None = None,
                root: Path | None = None) -> Path:
    from emorec import tracking, training

    params = params or load_params()
    paths = Paths(root or project_root())
    _check_grid_names(params, dataset, model, balance)
    seed = int(section(params, "seed"))
    model_params = dict(section(params, "models", model))
    cfg = training.TrainConfig.from_params(section(params, "train"), model_params, seed)
    prepared = paths.prepared(dataset)
    x_train, y_train, classes = _load_part(prepared, "train_balanced" if balance == "balanced" else "train")
    x_val, y_val, _ = _load_part(prepared, "val")
    run_name = paths.run_name(dataset, model, balance)
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    stage_name = tracking.dvc_stage(f"train@{run_name}")
    log_params = {
        "dataset": dataset, "model": model, "balance": balance, "seed": seed,
        **{f"train.{k}": v for k, v in flatten(section(params, "train")).items()},
        **{f"model.{k}": v for k, v in flatten(model_params).items()},
        **{f"prepare.{k}": v for k, v in flatten(section(params, "prepare")).items()},
        **{f"fetch.{k}": v for k, v in flatten(section(params, "fetch", dataset)).items()},
        "validate.duplicates": section(params, "validate", "duplicates"),
        "n_train": len(y_train), "n_val": len(y_val),
    }
    tags = {"dataset": dataset, "model": model, "balance": balance, "weights": "scratch",
            "git_commit": tracking.git_commit(paths.root), "dvc_stage": stage_name,
            "hardware": tracking.hardware()}
    result = training.train(
        model_name=model, arch=dict(model_params.get("arch", {})), cfg=cfg,
        train_images=x_train, train_labels=y_train, val_images=x_val, val_labels=y_val,
        classes=classes, out_dir=paths.model_dir(dataset, model, balance),
        curves_dir=paths.training_dir(dataset, model, balance), run_name=run_name,
        experiment_id=experiment_id, log_params=log_params, tags=tags)
    print(f"{run_name}: best validation accuracy {result.val_metrics['accuracy']:.4f}, macro-F1 "
          f"{result.val_metrics['macro_f1']:.4f} at epoch {result.best_epoch}/{result.epochs_run} "
          f"({result.seconds / 60:.1f} min, {result.images_per_second:.0f} img/s); "
          f"MLflow run {result.run_id}")
    return result.model_path


def evaluate_stage(dataset: str, model: str, balance: str, params: dict | None = None,
                   root: Path | None = None) -> Path:
    import mlflow

    from emorec import evaluation, tracking
    from emorec.preprocess import InputSpec, to_model_input
    from emorec.training import load_model

    params = params or load_params()
    paths = Paths(root or project_root())
    _check_grid_names(params, dataset, model, balance)
    keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
    spec = InputSpec.from_dict(meta["input_spec"])
    x_test, y_test, classes = _load_part(paths.prepared(dataset), "test")
    if tuple(classes) != spec.classes:
        raise EmorecError(f"model classes {spec.classes} differ from the test data's {classes}")
    probs = keras_model.predict(to_model_input(x_test, spec), batch_size=256, verbose=0)
    pred = probs.argmax(1)
    metrics = evaluation.compute_metrics(y_test, pred, classes)
    run_name = paths.run_name(dataset, model, balance)
    out_dir = paths.evaluation_dir(dataset, model, balance)
    evaluation.plot_confusion(metrics["confusion"], classes, out_dir / "confusion_counts.png",
                              normalize=False, title=f"{run_name}: test confusion (counts)")
    evaluation.plot_confusion(metrics["confusion"], classes, out_dir / "confusion_normalized.png",
                              normalize=True, title=f"{run_name}: test confusion (row-normalized)")
    io.write_text(out_dir / "predictions.csv", "actual,predicted\n" + "".join(
        f"{classes[a]},{classes[p]}\n" for a, p in zip(y_test, pred)))
    from emorec import paper

    key = (dataset, model, balance)
    io.write_text(out_dir / "classification.md",
                  f"# {run_name}: test split, per class\n\n"
                  f"accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}, "
                  f"n = {metrics['n']}\n\n"
                  + evaluation.per_class_markdown(metrics, paper.PER_CLASS.get(key))
                  + (f"\n\nPaper columns: the paper's {paper.PER_CLASS_TABLE[key]}.\n"
                     if key in paper.PER_CLASS else "\n"))
    prep = section(params, "prepare")
    fetch_cfg = section(params, "fetch", dataset)
    mod = adapter(dataset)
    test_set = ("official " + "+".join(getattr(mod, "PAPER_TEST_SPLITS", ("test",)))
                if prep["protocol"] == "paper" else "official test")
    provenance = {
        "run_name": run_name, "dataset": dataset, "model": model, "balance": balance,
        "data": f"{dataset} (" + (f"max {fetch_cfg['max_per_class']} per class"
                                  if fetch_cfg.get("max_per_class") else "complete") + ")",
        "protocol": prep["protocol"], "test_set": test_set, "seed": section(params, "seed"),
        "epochs": section(params, "train", "epochs"), "epochs_run": meta["epochs_run"],
        "best_epoch": meta["best_epoch"], "weights": meta["weights"], "n_train": meta["n_train"],
        "train_seconds": meta["train_seconds"], "hardware": tracking.hardware(),
        "git_commit": tracking.git_commit(paths.root), "mlflow_run_id": meta["run_id"],
        "train_data_fingerprint": meta["train_data_fingerprint"],
    }
    io.write_json(out_dir / "evaluation.json",
                  {"test": metrics, "validation": meta["val_metrics"], "provenance": provenance})
    metrics_path = paths.metrics(dataset, model, balance)
    io.write_json(metrics_path, {
        "test": {k: round(metrics[k], 4) for k in ("accuracy", "macro_f1", "weighted_f1")},
        "validation": {k: round(meta["val_metrics"][k], 4) for k in ("accuracy", "macro_f1")},
    })

    tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    with mlflow.start_run(run_id=meta["run_id"]):
        mlflow.log_metrics({"test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"],
                            "test_weighted_f1": metrics["weighted_f1"]})
        mlflow.log_metrics({f"test_f1_{c}": m["f1"] for c, m in metrics["per_class"].items()})
        mlflow.log_artifacts(str(out_dir), artifact_path="evaluation")
        mlflow.set_tag("evaluated_by", tracking.dvc_stage(f"evaluate@{run_name}"))
    print(f"{run_name}: test accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f} "
          f"(n={metrics['n']}) -> {metrics_path.relative_to(paths.root)}")
    return metrics_path


def report_stage(params: dict | None = None, root: Path | None = None) -> Path:
    from emorec import report

    params = params or load_params()
    paths = Paths(root or project_root())
    rows = report.collect(paths.root / "reports" / "evaluation")
    if not rows:
        raise EmorecError(f"{paths.root / 'reports' / 'evaluation'}: no evaluated runs; run the "
                          "evaluate stage first")
    out = paths.root / "reports" / "results.md"
    io.write_text(out, report.comparison_markdown(rows))
    summary = {r["provenance"]["run_name"]: {"test_accuracy": round(r["test"]["accuracy"], 4),
                                             "test_macro_f1": round(r["test"]["macro_f1"], 4)}
               for r in rows}
    print(json.dumps(summary, indent=2))
    return out
