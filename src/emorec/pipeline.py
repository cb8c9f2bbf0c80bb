"""The pipeline's stages as functions of (params, names). `stages/*.py` and the `emorec`
CLI both call these; DVC runs the former."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from emorec import io
from emorec.config import Paths, flatten, load_params, project_root, section
from emorec.datasets import DatasetCache, adapter_for, fetch
from emorec.errors import DataNotFoundError, EmorecError

log = logging.getLogger("emorec")
BALANCE_MODES = ("plain", "balanced")
PCA_SUFFIX = "_pca"
MISSING_MARKER = "missing.json"


def base_dataset(params: dict, dataset: str) -> str:
    """`affectnet_pca` -> `affectnet` (PCA-reconstructed inputs of a fetched dataset)."""
    if dataset.endswith(PCA_SUFFIX) and dataset not in section(params, "fetch"):
        base = dataset[: -len(PCA_SUFFIX)]
        if base not in section(params, "pca", "datasets"):
            raise EmorecError(f"params.yaml: grid dataset {dataset!r} needs {base!r} in pca.datasets")
        return base
    return dataset


def dataset_adapter(params: dict, dataset: str):
    return adapter_for(base_dataset(params, dataset), section(params, "fetch"))


def protocol_for(params: dict, dataset: str) -> str:
    """prepare.protocol, unless prepare.protocol_overrides names this dataset."""
    prep = section(params, "prepare")
    return (prep.get("protocol_overrides") or {}).get(base_dataset(params, dataset), prep["protocol"])


def _missing_reason(folder: Path) -> str | None:
    marker = folder / MISSING_MARKER
    return io.read_json(marker)["reason"] if marker.exists() else None


def _write_placeholders(reason: str, pngs: list[Path] = (), texts: dict[Path, str] | None = None) -> None:
    """Outputs of a stage whose optional dataset is absent: they say so instead of a crash."""
    from emorec import plots

    for png in pngs:
        plots.message_figure(png, reason)
    for path, text in (texts or {}).items():
        io.write_text(path, text)


def _check_grid_names(params: dict, dataset: str, model: str | None = None,
                      balance: str | None = None) -> None:
    dataset_adapter(params, dataset)  # raises for an unknown dataset
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
    mod = adapter_for(dataset, section(params, "fetch"))
    cfg = section(params, "fetch", dataset)
    target = paths.cache(dataset)
    try:
        result = fetch(dataset, cfg, paths.root, paths.downloads())
    except DataNotFoundError as exc:
        if not cfg.get("optional"):
            raise
        size, channels = mod.image_spec(cfg)
        empty = DatasetCache(np.zeros((0, size, size, channels), np.uint8), np.zeros(0, np.int64),
                             np.array([], str), np.array([], str), mod.classes(cfg),
                             {"dataset": dataset, "searched": str(exc),
                              "missing": f"needs the {dataset} data (not found; set fetch.{dataset}.path "
                                         f"or ${cfg.get('env_var') or 'its environment variable'})"})
        empty.save(target)
        print(f"{dataset}: optional dataset not found; later stages report it as missing.\n{exc}")
        return target
    result.cache.save(target)
    counts = {s: sum(result.cache.counts(s).values()) for s in ("train", "val", "test")}
    print(f"{dataset}: {len(result.cache)} images from {result.found_via} "
          f"(official splits: {counts}) -> {target.relative_to(paths.root)}")
    return target


def expected_counts(mod, cfg: dict) -> dict | None:
    """The adapter's known counts, capped at max_per_class for subset runs."""
    known = mod.expected_counts(cfg)
    max_per_class = cfg.get("max_per_class")
    if known is None:
        return None
    if max_per_class:
        return {s: {c: min(n, max_per_class) for c, n in per.items()} for s, per in known.items()}
    return known


def validate_stage(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    from emorec import validation

    params = params or load_params()
    paths = Paths(root or project_root())
    mod = adapter_for(dataset, section(params, "fetch"))
    fetch_cfg = section(params, "fetch", dataset)
    cfg = section(params, "validate")
    cache = DatasetCache.load(paths.cache(dataset))
    json_path = paths.validation_report(dataset)
    if cache.meta.get("missing"):
        reason = cache.meta["missing"]
        io.write_json(json_path, {"dataset": dataset, "skipped": reason, "success": None,
                                  "duplicate_groups": []})
        io.write_text(json_path.with_suffix(".md"), f"# Validation: {dataset}\n\nNot run: {reason}\n")
        print(f"{dataset}: skipped ({reason.splitlines()[0]})")
        return json_path
    size, channels = mod.image_spec(fetch_cfg)
    report = validation.validate(
        cache, dataset, image_size=size, channels=channels,
        expected_counts=expected_counts(mod, fetch_cfg),
        duplicates_policy=cfg["duplicates"], min_pixel_std=cfg.get("min_pixel_std", 1.0))
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
    mod = adapter_for(dataset, section(params, "fetch"))
    cfg = section(params, "prepare")
    seed = int(section(params, "seed"))
    cache = DatasetCache.load(paths.cache(dataset))
    out = paths.prepared(dataset)
    figures = paths.root / "reports" / "figures"
    if cache.meta.get("missing"):
        reason = cache.meta["missing"].splitlines()[0]
        with io.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            io.write_json(tmp / MISSING_MARKER, {"reason": reason})
        io.write_json(paths.root / "reports" / "prepare" / f"{dataset}.json",
                      {"dataset": dataset, "skipped": reason})
        _write_placeholders(reason, [figures / f"{dataset}_class_distribution.png",
                                     figures / f"{dataset}_balancing.png"])
        print(f"{dataset}: skipped ({reason})")
        return out
    report_path = paths.validation_report(dataset)
    if not report_path.exists():
        raise EmorecError(f"{report_path}: validation report missing; run the validate stage first")
    groups = io.read_json(report_path)["duplicate_groups"]

    protocol = protocol_for(params, dataset)
    masks = split.make_splits(cache, protocol, cfg["val_fraction"], seed,
                              getattr(mod, "PAPER_TEST_SPLITS", ("test",)))
    policy = section(params, "validate", "duplicates")
    train_mask, dropped = split.apply_duplicate_policy(cache, masks, groups, policy)
    train, val, test = cache.subset(train_mask), cache.subset(masks[1]), cache.subset(masks[2])
    aug_cfg = augment.AugmentConfig.from_params(cfg.get("augmentation", {}))
    bal_images, bal_labels, is_aug = augment.balance(
        train.images, train.labels, len(cache.classes), cfg["balance_target"], aug_cfg, seed)

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
        "dataset": dataset, "protocol": protocol, "val_fraction": cfg["val_fraction"],
        "seed": seed, "duplicates_policy": policy, "dropped_from_train": len(dropped),
        "dropped_source_ids": dropped,
        "train": train.counts(), "val": val.counts(), "test": test.counts(),
        "train_balanced": balanced_counts, "balance_target": cfg["balance_target"],
        "augmented_images": int(is_aug.sum()),
    }
    io.write_json(paths.root / "reports" / "prepare" / f"{dataset}.json", summary)
    plots.class_distribution(
        {"train": train.counts(), "validation": val.counts(), "test": test.counts()},
        figures / f"{dataset}_class_distribution.png",
        f"{dataset}: images per class and split ({protocol} protocol)")
    plots.class_distribution(
        {"before balancing": train.counts(), f"after balancing ({cfg['balance_target']})": balanced_counts},
        figures / f"{dataset}_balancing.png",
        f"{dataset}: training set before and after balancing by augmentation")
    print(f"{dataset}: train {len(train)} (dropped {len(dropped)} cross-split duplicates), "
          f"val {len(val)}, test {len(test)}; balanced train {len(bal_labels)} "
          f"(+{int(is_aug.sum())} augmented) -> {out.relative_to(paths.root)}")
    return out


def pca_stage(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Per-channel PCA reconstruction of a prepared dataset -> data/prepared/<dataset>_pca."""
    from emorec import pca

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "pca")
    seed = int(section(params, "seed"))
    source = paths.prepared(dataset)
    out = paths.prepared(dataset + PCA_SUFFIX)
    report_path = paths.root / "reports" / "pca" / f"{dataset}.json"
    grid_png = paths.root / "reports" / "figures" / f"{dataset}_pca_samples.png"
    reason = _missing_reason(source)
    if reason:
        with io.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            io.write_json(tmp / MISSING_MARKER, {"reason": reason})
        io.write_json(report_path, {"dataset": dataset, "skipped": reason})
        _write_placeholders(reason, [grid_png])
        print(f"{dataset}: PCA skipped ({reason})")
        return out
    x_train, _, _ = _load_part(source, "train")
    model = pca.fit(x_train, cfg["variance"], cfg["max_components"], cfg["fit_samples"], seed)
    errors = {}
    with io.atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for part in ("train", "train_balanced", "val", "test"):
            data = io.load_npz(source / f"{part}.npz")
            data["images"], errors[part] = pca.reconstruct(model, data["images"], cfg.get("output_size"))
            with open(tmp / f"{part}.npz", "wb") as fh:
                np.savez(fh, **data)
    test_before = io.load_npz(source / "test.npz")["images"][:8]
    test_after = io.load_npz(out / "test.npz")["images"][:8]
    pca.sample_grid(test_before, test_after, grid_png,
                    f"{dataset}: test faces before (top) and after per-channel PCA "
                    f"({cfg['variance']:.0%} variance), resized to {cfg.get('output_size') or 'input size'}")
    summary = {"dataset": dataset, "variance_target": cfg["variance"], "fit_samples": min(
        cfg["fit_samples"], len(x_train)), "input_size": model.size,
        "output_size": cfg.get("output_size") or model.size, "channels": model.summary(),
        "reconstruction_mse": {k: round(v, 6) for k, v in errors.items()}, "seed": seed}
    io.write_json(report_path, summary)
    kept = ", ".join(f"{c['components']} ({c['explained_variance']:.3f})" for c in model.summary())
    print(f"{dataset}: PCA components kept per channel (explained variance): {kept}; test MSE "
          f"{errors['test']:.5f} -> {out.relative_to(paths.root)}")
    return out


def _load_part(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    path = folder / f"{name}.npz"
    if not path.exists():
        raise EmorecError(f"{path}: prepared data missing; run the prepare stage first")
    data = io.load_npz(path)
    return data["images"], data["labels"], tuple(str(c) for c in data["classes"])


GRID_SCOPES = ("cpu", "full")
OUTSIDE_GRID_PREFIX = "not in the CPU grid"


def grid_scope(params: dict) -> str:
    scope = (params.get("grid") or {}).get("scope", "full")
    if scope not in GRID_SCOPES:
        raise EmorecError(f"params.yaml: grid.scope must be one of {GRID_SCOPES}, got {scope!r}")
    return scope


def outside_cpu_grid(params: dict, dataset: str, model: str, balance: str) -> str | None:
    """With grid.scope: cpu, a model trains only the cells its `cpu.cells` lists; the others
    are skipped (and say how to run them) so the default run fits a 2-core budget."""
    if grid_scope(params) != "cpu":
        return None
    cells = ((section(params, "models", model).get("cpu") or {}).get("cells")) or {}
    for key, value in (("datasets", dataset), ("balance", balance)):
        allowed = cells.get(key)
        if allowed is not None and value not in allowed:
            return (f"{OUTSIDE_GRID_PREFIX} (models.{model}.cpu.cells.{key} = {allowed}); "
                    "the full grid runs with grid.scope=full, see README")
    return None


def train_stage(dataset: str, model: str, balance: str, params: dict | None = None,
                root: Path | None = None) -> Path:
    from emorec import tracking, training

    params = params or load_params()
    paths = Paths(root or project_root())
    _check_grid_names(params, dataset, model, balance)
    seed = int(section(params, "seed"))
    model_params = dict(section(params, "models", model))
    scope = grid_scope(params)
    cfg = training.TrainConfig.from_params(section(params, "train"), model_params, seed, dataset, scope)
    prepared = paths.prepared(dataset)
    run_name = paths.run_name(dataset, model, balance)
    reason = _missing_reason(prepared) or outside_cpu_grid(params, dataset, model, balance)
    if reason:
        out = paths.model_dir(dataset, model, balance)
        with io.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            io.write_json(tmp / MISSING_MARKER, {"reason": reason})
        curves = paths.training_dir(dataset, model, balance)
        _write_placeholders(reason, [curves / "curves.png", curves / "val_confusion.png"],
                            {curves / "history.csv": "epoch,accuracy,loss,val_accuracy,val_loss\n"})
        print(f"{run_name}: skipped ({reason})")
        return out
    x_train, y_train, classes = _load_part(prepared, "train_balanced" if balance == "balanced" else "train")
    x_val, y_val, _ = _load_part(prepared, "val")
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    stage_name = tracking.dvc_stage(f"train@{run_name}")
    log_params = {
        "dataset": dataset, "model": model, "balance": balance, "seed": seed,
        **{f"train.{k}": v for k, v in flatten(section(params, "train")).items()},
        **{f"model.{k}": v for k, v in flatten(model_params).items()},
        **{f"prepare.{k}": v for k, v in flatten(section(params, "prepare")).items()},
        **{f"fetch.{k}": v for k, v in flatten(section(params, "fetch", base_dataset(params, dataset))).items()},
        "validate.duplicates": section(params, "validate", "duplicates"),
        "n_train": len(y_train), "n_val": len(y_val),
    }
    tags = {"dataset": dataset, "model": model, "balance": balance, "grid_scope": scope,
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
    run_name = paths.run_name(dataset, model, balance)
    out_dir = paths.evaluation_dir(dataset, model, balance)
    metrics_path = paths.metrics(dataset, model, balance)
    reason = _missing_reason(paths.model_dir(dataset, model, balance))
    if reason:
        _write_placeholders(reason, [out_dir / "confusion_counts.png", out_dir / "confusion_normalized.png"],
                            {out_dir / "predictions.csv": "actual,predicted\n",
                             out_dir / "classification.md": f"# {run_name}\n\nNot evaluated: {reason}\n"})
        io.write_json(out_dir / "evaluation.json", {"skipped": reason, "provenance": {
            "run_name": run_name, "dataset": dataset, "model": model, "balance": balance}})
        io.write_json(metrics_path, {"skipped": 1})
        print(f"{run_name}: skipped ({reason})")
        return metrics_path
    keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
    spec = InputSpec.from_dict(meta["input_spec"])
    x_test, y_test, classes = _load_part(paths.prepared(dataset), "test")
    if tuple(classes) != spec.classes:
        raise EmorecError(f"model classes {spec.classes} differ from the test data's {classes}")
    probs = keras_model.predict(to_model_input(x_test, spec), batch_size=256, verbose=0)
    pred = probs.argmax(1)
    metrics = evaluation.compute_metrics(y_test, pred, classes)
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
    fetch_cfg = section(params, "fetch", base_dataset(params, dataset))
    mod = dataset_adapter(params, dataset)
    protocol = protocol_for(params, dataset)
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
        "grid_scope": grid_scope(params),
        "train_seconds": meta["train_seconds"], "hardware": tracking.hardware(),
        "git_commit": tracking.git_commit(paths.root), "mlflow_run_id": meta["run_id"],
        "train_data_fingerprint": meta["train_data_fingerprint"],
    }
    io.write_json(out_dir / "evaluation.json",
                  {"test": metrics, "validation": meta["val_metrics"], "provenance": provenance})
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
    cv = params.get("crossval") or {}
    studies = {"crossval": f"{cv.get('model')} on {cv.get('dataset')}, k = {cv.get('folds')}",
               "explain": [paths.run_name(*_parse_run(r)) for r in (params.get("explain") or {}).get("runs", [])]}
    io.write_text(paths.root / "reports" / "README.md", report.index_markdown(
        section(params, "datasets"), section(params, "grid"), section(params, "pca", "datasets"),
        rows, studies))
    summary = {r["provenance"]["run_name"]: (
        {"test_accuracy": round(r["test"]["accuracy"], 4), "test_macro_f1": round(r["test"]["macro_f1"], 4)}
        if "test" in r else {"skipped": r["skipped"]}) for r in rows}
    print(json.dumps(summary, indent=2))
    return out


def _grid_runs(params: dict, paths: Paths, dataset: str) -> list[tuple[str, str, Path]]:
    grid = section(params, "grid")
    return [(m, b, paths.model_dir(dataset, m, b)) for m in grid["models"] for b in grid["balance"]]


def register_stage(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Register the best run of `dataset` (validation metric) and promote it if it wins."""
    import mlflow

    from emorec import evaluation, registry, tracking
    from emorec.model_card import write_model_card
    from emorec.preprocess import InputSpec, to_model_input

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "register")
    metric = cfg.get("metric", "macro_f1")
    if metric not in ("macro_f1", "accuracy"):
        raise EmorecError(f"params.yaml: register.metric must be macro_f1 or accuracy, got {metric!r}")
    dataset_adapter(params, dataset)
    out = paths.root / "reports" / "registry" / f"{dataset}.json"
    card = paths.root / "reports" / "model_cards" / f"{registry.model_name(dataset)}.md"
    runs = []
    for model, balance, folder in _grid_runs(params, paths, dataset):
        if _missing_reason(folder) or not (folder / "run.json").exists():
            continue
        meta = io.read_json(folder / "run.json")
        record = paths.evaluation_dir(dataset, model, balance) / "evaluation.json"
        if not record.exists():
            raise EmorecError(f"{record}: missing; run the evaluate stage before register")
        runs.append((meta, io.read_json(record), model, balance))
    if not runs:
        reason = _missing_reason(paths.prepared(dataset)) or f"no trained runs for {dataset}"
        io.write_json(out, {"dataset": dataset, "skipped": reason})
        io.write_text(card, f"# {registry.model_name(dataset)}\n\nNo model registered: {reason}\n")
        print(f"{dataset}: nothing to register ({reason})")
        return out
    meta, record, model, balance = max(runs, key=lambda r: r[0]["val_metrics"][metric])
    x_val, y_val, classes = _load_part(paths.prepared(dataset), "val")
    val_fingerprint = io.fingerprint_arrays(x_val, y_val)
    test = record["test"]
    tags = {
        "dataset": dataset, "model": model, "balance": balance, "run_name": record["provenance"]["run_name"],
        "validation_metric": metric, "val_score": meta["val_metrics"][metric],
        "val_accuracy": meta["val_metrics"]["accuracy"], "val_macro_f1": meta["val_metrics"]["macro_f1"],
        "test_accuracy": test["accuracy"], "test_macro_f1": test["macro_f1"],
        "val_data_fingerprint": val_fingerprint, "train_data_fingerprint": meta["train_data_fingerprint"],
        "params_hash": registry.params_hash(params), "git_commit": tracking.git_commit(paths.root),
        "dvc_stage": tracking.dvc_stage(f"register@{dataset}"), "weights": meta["weights"],
        "classes": ",".join(classes),
    }

    def champion_score(version) -> float:
        champ_classes = (version.tags or {}).get("classes", "")
        if champ_classes and champ_classes != ",".join(classes):
            raise EmorecError(f"{version.name} champion v{version.version} predicts {champ_classes}, the "
                              f"candidate {','.join(classes)}; they cannot be compared. Promote one by "
                              "hand: emorec registry promote VERSION --dataset " + dataset)
        uri = f"models:/{version.name}/{version.version}"
        try:
            spec = InputSpec.from_dict(mlflow.artifacts.load_dict(f"runs:/{version.run_id}/preprocessing.json"))
            champ = tracking.load_logged_keras(uri)
        except Exception as exc:  # missing or damaged artifacts raise many types
            raise EmorecError(f"cannot load the current champion {uri} to compare with it "
                              f"({type(exc).__name__}: {str(exc)[:300]}); repair it or promote by hand") from exc
        pred = champ.predict(to_model_input(x_val, spec), batch_size=256, verbose=0).argmax(1)
        return evaluation.compute_metrics(y_val, pred, classes)[metric]

    tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    decision = registry.register_and_maybe_promote(
        dataset=dataset, run=meta, tags=tags, metric=metric, margin=float(cfg.get("margin", 0.0)),
        lock_path=registry.lock_file_for(paths.root), score_champion_on_candidate_data=champion_score,
        auto_promote=bool(cfg.get("auto_promote", True)))
    write_model_card(card, decision, record, meta, tags)
    with mlflow.start_run(run_id=meta["run_id"]):
        mlflow.log_artifact(str(card), artifact_path="model_card")
    io.write_json(out, {**decision.to_dict(), "candidates": [
        {"run": r[1]["provenance"]["run_name"], f"val_{metric}": r[0]["val_metrics"][metric]} for r in runs]})
    print(f"{dataset}: registered {decision.model_name} v{decision.version} from {tags['run_name']} "
          f"(val {metric} {decision.candidate_score:.4f}); "
          + ("champion" if decision.promoted else "challenger") + f": {decision.reason}")
    return out


def export_stage(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Export the champion of emorec-<dataset> to every format and check each against Keras."""
    import mlflow

    from emorec import export, registry, tracking
    from emorec.preprocess import InputSpec, to_model_input

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "export")
    dataset_adapter(params, dataset)
    name = registry.model_name(dataset)
    report_json = paths.root / "reports" / "export" / f"{dataset}.json"
    out = paths.root / "models" / "export" / dataset
    decision = io.read_json(paths.root / "reports" / "registry" / f"{dataset}.json")
    if "skipped" in decision:
        with io.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            io.write_json(tmp / MISSING_MARKER, {"reason": decision["skipped"]})
        io.write_json(report_json, {"dataset": dataset, "skipped": decision["skipped"]})
        io.write_text(report_json.with_suffix(".md"), f"# Export of {name}\n\nNot exported: {decision['skipped']}\n")
        print(f"{dataset}: nothing to export ({decision['skipped']})")
        return out
    tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    alias = cfg.get("alias", registry.CHAMPION)
    champion = registry.current_alias(name, alias)
    if champion is None:
        raise EmorecError(f"{name} has no {alias} in {tracking.tracking_uri(paths.root)}; run the "
                          "register stage or `emorec registry promote VERSION`")
    uri = f"models:/{name}@{alias}"
    try:
        spec = InputSpec.from_dict(mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/preprocessing.json"))
        model = tracking.load_logged_keras(uri)
    except Exception as exc:  # missing or damaged artifacts raise many types
        raise EmorecError(f"cannot load {uri} ({type(exc).__name__}: {str(exc)[:300]})") from exc
    x_test, _, _ = _load_part(paths.prepared(dataset), "test")
    x = to_model_input(x_test[: int(cfg.get("parity_images", 1000))], spec)
    reference = np.asarray(model.predict(x, batch_size=256, verbose=0))
    with io.atomic_path(out) as tmp:
        files = export.export_all(model, tmp, cfg.get("quantization", "float16"))
        results = export.check(files, reference, x, latency_runs=int(cfg.get("latency_runs", 100)),
                               min_agreement=cfg.get("min_agreement"))
        io.write_json(tmp / "preprocessing.json", spec.to_dict())
    io.write_json(report_json, {"dataset": dataset, "model_name": name, "version": str(champion.version),
                                "run_id": champion.run_id, "parity_images": len(x),
                                "input_spec": spec.to_dict(), "formats": results})
    io.write_text(report_json.with_suffix(".md"), export.report_markdown(
        name, str(champion.version), results, len(x), f"{dataset} test split"))
    failed = [f for f, r in results.items() if not r["passed"]]
    summary = ", ".join(f"{f} {r['top1_agreement']:.4f}/{r['latency_ms_batch1_median']:.2f}ms"
                        for f, r in results.items())
    print(f"{dataset}: exported {name} v{champion.version}: {summary}")
    if failed:
        raise EmorecError(f"export parity failed for {', '.join(failed)}; see {report_json}")
    return out


def infer_stage(source: str | None = None, model: str | None = None, detector: str | None = None,
                out_dir: str | None = None, params: dict | None = None, root: Path | None = None,
                overrides: dict | None = None, progress: bool = True) -> dict:
    """Detect, track and classify faces in a video, camera, image or folder of images.
    `overrides`: `infer` keys to replace (None values are ignored)."""
    from emorec import detectors, realtime

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = dict(section(params, "infer"))
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    source = source or cfg["source"]
    configured_source = str(source)
    model = model or cfg["model"]
    name = detector or cfg["detector"]
    out = Path(out_dir or cfg["out_dir"])
    out = out if out.is_absolute() else paths.root / out
    if not str(source).isdigit() and not Path(source).is_absolute():
        source = str(paths.root / source)
    det_settings = dict(section(params, "detectors").get(name) or {})
    det = detectors.create(name, det_settings, paths.root)
    if model.startswith("models:/"):
        from emorec import tracking

        tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    classifier = realtime.Classifier(model, paths.root, cfg.get("classifier_threads", 1))
    known = set(realtime.InferConfig.__dataclass_fields__)
    run_cfg = realtime.InferConfig(**{k: v for k, v in cfg.items() if k in known})
    summary = realtime.run(realtime.open_source(str(source)), det, classifier, run_cfg, out, progress)
    summary.update({"source": configured_source, "model": model, "detector": name})
    io.write_json(out / "summary.json", summary)
    print(f"{summary['frames']} frames, {summary['faces_classified']} faces, {summary['tracks']} tracks, "
          f"{summary['fps']} FPS end to end ({name} detector) -> {out}")
    return summary


def detectors_stage(params: dict | None = None, root: Path | None = None) -> Path:
    """Every configured detector on the WIDER photos: recall, false positives, speed."""
    from emorec import detector_eval, detectors, tracking

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "detector_eval")
    key_total = f"faces_min_{cfg['min_face']}px"
    resolve = lambda p: Path(p) if Path(p).is_absolute() else paths.root / p  # noqa: E731
    gt_path, images = resolve(cfg["ground_truth"]), resolve(cfg["images"])
    if not gt_path.exists():
        raise EmorecError(f"{gt_path}: WIDER ground truth not found (detector_eval.ground_truth)")
    truth = detector_eval.read_wider_ground_truth(gt_path)
    results = {}
    for name in cfg["detectors"]:
        try:
            det = detectors.create(name, section(params, "detectors").get(name), paths.root)
        except detectors.WeightsError as exc:
            results[name] = {"unavailable": str(exc)}
            print(f"{name}: not evaluated ({exc})")
            continue
        results[name] = detector_eval.evaluate(det, images, truth, cfg["min_face"], cfg["iou"])
        r = results[name]
        print(f"{name}: recall {r['recall']:.3f} ({r['found']}/{r[key_total]}), "
              f"{r['false_positives']} false positives, {r['ms_per_image']:.1f} ms/image")
    out = paths.root / "reports" / "detectors.json"
    n_faces = sum(len(v) for v in truth.values())
    io.write_json(out, {"images": len(truth), "faces": n_faces, "min_face": cfg["min_face"],
                        "iou": cfg["iou"], "hardware": tracking.hardware(),
                        "detectors": results})
    lines = ["# Face detectors on WIDER FACE validation photos", "",
             f"{len(truth)} photos, {n_faces} annotated faces; recall counts faces of at least "
             f"{cfg['min_face']} px (short side) found at IoU >= {cfg['iou']}; a false positive is a "
             "detection that matches no annotated face of any size. Speed is per photo on this CPU.", "",
             "| detector | recall | faces found | false positives | precision | ms / photo |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "unavailable" in r:
            lines.append(f"| {name} | not evaluated: {r['unavailable']} |  |  |  |  |")
        else:
            lines.append(f"| {name} | {r['recall']:.3f} | {r['found']} / {r[key_total]} | {r['false_positives']} "
                         f"| {r['precision']:.3f} | {r['ms_per_image']:.1f} |")
    io.write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    return out


# --- studies: cross-validation, seeds, explainability, cross-dataset (issue 5) -------------

def _parse_run(spec: str) -> tuple[str, str, str]:
    parts = spec.split("/")
    if len(parts) != 3:
        raise EmorecError(f"params.yaml: {spec!r} must name a grid cell as dataset/model/balance")
    return parts[0], parts[1], parts[2]


def _study_config(params: dict, dataset: str, model: str, seed: int, extra: dict | None = None):
    from emorec import training

    model_params = dict(section(params, "models", model))
    cfg = training.TrainConfig.from_params(section(params, "train"), model_params, seed, dataset,
                                           grid_scope(params))
    for key, value in (extra or {}).items():
        setattr(cfg, key, value)
    return cfg, dict(model_params.get("arch") or {})


def _study_parent(experiment_id: str, name: str, params_to_log: dict, tags: dict) -> str:
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as parent:
        mlflow.log_params({k: str(v)[:500] for k, v in params_to_log.items()})
        mlflow.set_tags(tags)
    return parent.info.run_id


def crossval_stage(params: dict | None = None, root: Path | None = None) -> Path:
    """Stratified k-fold cross-validation of one model on one dataset's training split."""
    import mlflow

    from emorec import crossval, tracking, training

    params = params or load_params()
    paths = Paths(root or project_root())
    cv = section(params, "crossval")
    dataset, model, balance, k = cv["dataset"], cv["model"], cv.get("balance", "plain"), int(cv["folds"])
    _check_grid_names(params, dataset, model, balance)
    seed = int(section(params, "seed"))
    out = paths.root / "reports" / "crossval" / "crossval.json"
    metrics_path = paths.root / "metrics" / "crossval.json"
    name = f"crossval-{dataset}-{model}-{balance}-k{k}"
    reason = _missing_reason(paths.prepared(dataset))
    if reason:
        io.write_json(out, {"skipped": reason, "name": name})
        io.write_text(out.with_suffix(".md"), f"# {name}\n\nNot run: {reason}\n")
        io.write_json(metrics_path, {"skipped": 1})
        print(f"{name}: skipped ({reason})")
        return out
    x, y, classes = _load_part(paths.prepared(dataset), "train_balanced" if balance == "balanced" else "train")
    keep = training.subsample(y, cv.get("max_images"), seed)
    x, y = x[keep], y[keep]
    folds = crossval.stratified_folds(y, k, seed)
    cfg, arch = _study_config(params, dataset, model, seed, {"epochs": int(cv["epochs"]),
                                                              "max_train_images": None})
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    common_tags = {"dataset": dataset, "model": model, "balance": balance, "study": "crossval",
                   "git_commit": tracking.git_commit(paths.root), "hardware": tracking.hardware(),
                   "dvc_stage": tracking.dvc_stage("crossval")}
    parent = _study_parent(experiment_id, name, {"folds": k, "images": len(y), "epochs": cfg.epochs,
                                                 "inner_val_fraction": cv["inner_val_fraction"],
                                                 "seed": seed}, common_tags)
    results = []
    for i, held_out in enumerate(folds):
        rest = np.setdiff1d(np.arange(len(y)), held_out)
        fit, val = crossval.inner_split(y[rest], float(cv["inner_val_fraction"]), seed + i)
        fit, val = rest[fit], rest[val]
        print(f"{name}: fold {i + 1}/{k}: train {len(fit)}, inner validation {len(val)}, held out {len(held_out)}")
        results.append({"fold": i + 1, **crossval.train_and_score(
            model_name=model, arch=arch, cfg=cfg, x_fit=x[fit], y_fit=y[fit], x_val=x[val], y_val=y[val],
            x_score=x[held_out], y_score=y[held_out], classes=classes, run_name=f"{name}-fold{i + 1}",
            experiment_id=experiment_id, log_params={"fold": i + 1, "folds": k, "n_fit": len(fit)},
            tags={**common_tags, "mlflow.parentRunId": parent, "fold": str(i + 1)})})
    summary = crossval.Summary(results).to_dict()
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
    io.write_json(out, record)
    from emorec import report

    io.write_text(out.with_suffix(".md"), report.crossval_markdown(record))
    io.write_json(metrics_path, {"accuracy_mean": round(summary["accuracy"]["mean"], 4),
                                 "accuracy_std": round(summary["accuracy"]["std"], 4),
                                 "macro_f1_mean": round(summary["macro_f1"]["mean"], 4),
                                 "macro_f1_std": round(summary["macro_f1"]["std"], 4)})
    print(f"{name}: accuracy {summary['accuracy']['mean']:.4f} +- {summary['accuracy']['std']:.4f}, "
          f"macro-F1 {summary['macro_f1']['mean']:.4f} +- {summary['macro_f1']['std']:.4f}")
    return out


def seeds_stage(params: dict | None = None, root: Path | None = None) -> Path:
    """Re-train chosen grid cells with more seeds; the grid's own seed run is reused."""
    from emorec import crossval, tracking

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg_seeds = section(params, "seeds")
    grid_seed = int(section(params, "seed"))
    values = [int(s) for s in cfg_seeds["values"]]
    if len(set(values)) != len(values) or len(values) < 2:
        raise EmorecError("params.yaml: seeds.values must list at least two different seeds")
    out = paths.root / "reports" / "seeds" / "seeds.json"
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    records = []
    for spec in cfg_seeds["runs"]:
        dataset, model, balance = _parse_run(spec)
        _check_grid_names(params, dataset, model, balance)
        run_name = paths.run_name(dataset, model, balance)
        reason = (_missing_reason(paths.prepared(dataset))
                  or _missing_reason(paths.model_dir(dataset, model, balance)))
        if reason:
            records.append({"run": run_name, "skipped": reason})
            continue
        x_tr, y_tr, classes = _load_part(paths.prepared(dataset),
                                         "train_balanced" if balance == "balanced" else "train")
        x_val, y_val, _ = _load_part(paths.prepared(dataset), "val")
        x_te, y_te, _ = _load_part(paths.prepared(dataset), "test")
        tags = {"dataset": dataset, "model": model, "balance": balance, "study": "seeds",
                "git_commit": tracking.git_commit(paths.root), "hardware": tracking.hardware(),
                "dvc_stage": tracking.dvc_stage("seeds")}
        parent = _study_parent(experiment_id, f"seeds-{run_name}", {"seeds": values}, tags)
        results = []
        for s in values:
            if s == grid_seed:  # the grid already trained this one
                ev = io.read_json(paths.evaluation_dir(dataset, model, balance) / "evaluation.json")
                results.append({"seed": s, "accuracy": ev["test"]["accuracy"], "macro_f1": ev["test"]["macro_f1"],
                                "n": ev["test"]["n"], "run_id": ev["provenance"]["mlflow_run_id"],
                                "source": "grid run"})
                continue
            cfg, arch = _study_config(params, dataset, model, s)
            print(f"{run_name}: seed {s}")
            results.append({"seed": s, "source": "seeds stage", **crossval.train_and_score(
                model_name=model, arch=arch, cfg=cfg, x_fit=x_tr, y_fit=y_tr, x_val=x_val, y_val=y_val,
                x_score=x_te, y_score=y_te, classes=classes, run_name=f"{run_name}-seed{s}",
                experiment_id=experiment_id, log_params={"seed": s},
                tags={**tags, "mlflow.parentRunId": parent, "seed": str(s)})})
        cfg, _ = _study_config(params, dataset, model, grid_seed)
        records.append({"run": run_name, "dataset": dataset, "model": model, "balance": balance,
                        "epochs": cfg.epochs, "max_train_images": cfg.max_train_images,
                        "mlflow_parent_run_id": parent, **crossval.Summary(results).to_dict()})
    from emorec import report

    io.write_json(out, {"seeds": values, "hardware": tracking.hardware(), "runs": records})
    io.write_text(out.with_suffix(".md"), report.seeds_markdown(values, records))
    print(report.seeds_markdown(values, records))
    return out


def cross_dataset_stage(params: dict | None = None, root: Path | None = None) -> Path:
    """Each listed grid model scored on another dataset's test split, shared classes only."""
    from emorec import evaluation, transfer
    from emorec.preprocess import InputSpec, to_model_input
    from emorec.training import load_model

    params = params or load_params()
    paths = Paths(root or project_root())
    rows = []
    for pair in section(params, "cross_dataset"):
        dataset, model, balance = _parse_run(pair["model"])
        test_ds = pair["test"]
        run_name = paths.run_name(dataset, model, balance)
        reason = (_missing_reason(paths.model_dir(dataset, model, balance))
                  or _missing_reason(paths.prepared(test_ds)))
        if reason:
            rows.append({"model": run_name, "test": test_ds, "skipped": reason})
            continue
        keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
        spec = InputSpec.from_dict(meta["input_spec"])
        x, y, data_classes = _load_part(paths.prepared(test_ds), "test")
        probs = keras_model.predict(to_model_input(x, spec), batch_size=256, verbose=0)
        y_true, y_pred, shared = transfer.restrict(probs, y, list(spec.classes), list(data_classes))
        m = evaluation.compute_metrics(y_true, y_pred, shared)
        own = io.read_json(paths.evaluation_dir(dataset, model, balance) / "evaluation.json")
        rows.append({"model": run_name, "trained_on": dataset, "test": test_ds, "classes": list(shared),
                     "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"],
                     "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()},
                     "own_test_accuracy": own["test"]["accuracy"], "own_test_macro_f1": own["test"]["macro_f1"],
                     "weights": meta["weights"], "seed": section(params, "seed")})
        print(f"{run_name} on {test_ds} ({len(shared)} shared classes): accuracy {m['accuracy']:.4f}, "
              f"macro-F1 {m['macro_f1']:.4f} (own test {own['test']['accuracy']:.4f})")
    from emorec import report

    out = paths.root / "reports" / "cross_dataset.json"
    io.write_json(out, {"rows": rows})
    io.write_text(out.with_suffix(".md"), report.cross_dataset_markdown(rows))
    return out


def explain_stage(params: dict | None = None, root: Path | None = None) -> Path:
    """Grad-CAM overlays and feature-map grids for chosen grid models (paper Figs. 7-8)."""
    from emorec import explain
    from emorec.preprocess import InputSpec, to_model_input
    from emorec.training import load_model

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "explain")
    seed = int(section(params, "seed"))
    summary = {}
    for spec_name in cfg["runs"]:
        dataset, model, balance = _parse_run(spec_name)
        run_name = paths.run_name(dataset, model, balance)
        out_dir = paths.root / "reports" / "explain" / run_name
        reason = _missing_reason(paths.model_dir(dataset, model, balance))
        if reason:
            _write_placeholders(reason, [out_dir / "gradcam.png", out_dir / "feature_maps.png"])
            summary[run_name] = {"skipped": reason}
            continue
        keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
        spec = InputSpec.from_dict(meta["input_spec"])
        x, y, classes = _load_part(paths.prepared(dataset), "test")
        inputs = to_model_input(x, spec)
        pred = keras_model.predict(inputs, batch_size=256, verbose=0).argmax(1)
        picks = explain.pick_examples(y, pred, int(cfg["per_class"]), seed)
        idx = np.array([i for i, _ in picks])
        cams, _ = explain.gradcam(keras_model, inputs[idx])
        titles = [f"{classes[y[i]]}->{classes[pred[i]]}" + ("" if ok else " (wrong)") for i, ok in picks]
        explain.gradcam_figure(inputs[idx], cams, titles, out_dir / "gradcam.png",
                               f"{run_name}: Grad-CAM on test faces, true->predicted "
                               f"({cfg['per_class']} correct + {cfg['per_class']} wrong per class)")
        layers = (cfg.get("feature_layers") or {}).get(model) or []
        if layers:
            first = int(idx[0])
            maps = {name: explain.feature_maps(keras_model, inputs[first], name, int(cfg.get("channels", 12)))
                    for name in layers}
            explain.feature_map_figure(inputs[first], maps, out_dir / "feature_maps.png",
                                       f"{run_name}: feature maps for one {classes[y[first]]} test face")
        else:
            _write_placeholders(f"no explain.feature_layers.{model} in params.yaml",
                                [out_dir / "feature_maps.png"])
        summary[run_name] = {"examples": len(idx), "correct": int(sum(ok for _, ok in picks)),
                             "feature_layers": layers}
        print(f"{run_name}: Grad-CAM for {len(idx)} test faces -> {out_dir.relative_to(paths.root)}")
    out = paths.root / "reports" / "explain" / "explain.json"
    io.write_json(out, summary)
    return out
