"""DVC stage `register@<dataset>`: register the best run (validation metric) and promote it if it wins."""

from __future__ import annotations

import json
from pathlib import Path

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.errors import EmorecError


def run(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Register the best run of `dataset` (validation metric) and promote it if it wins."""
    import mlflow

    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.evaluation import metrics as evaluation
    from emorec.experiments import registry, tracking
    from emorec.experiments.model_card import write_model_card

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "register")
    metric = cfg.get("metric", "macro_f1")
    if metric not in ("macro_f1", "accuracy"):
        raise EmorecError(f"params.yaml: register.metric must be macro_f1 or accuracy, got {metric!r}")
    grid.check_names(params, dataset)     # unknown names fail before anything is read
    out = paths.root / "reports" / "registry" / f"{dataset}.json"
    card = paths.root / "reports" / "model_cards" / f"{registry.model_name(dataset)}.md"
    candidates = []
    for candidate in runs.runs(params, paths.root)[0]:
        if candidate.dataset != dataset:
            continue
        model, balance = candidate.model, candidate.balance
        folder = paths.model_dir(dataset, model, balance)
        if not (folder / "run.json").exists():
            raise EmorecError(f"{folder}: no trained model; run the train stage before register")
        meta = files.read_json(folder / "run.json")
        record = paths.evaluation_dir(dataset, model, balance) / "evaluation.json"
        if not record.exists():
            raise EmorecError(f"{record}: missing; run the evaluate stage before register")
        candidates.append((meta, files.read_json(record), model, balance))
    candidates += distilled_candidates(params, paths, dataset)
    if not candidates:
        reason = prepared.missing_reason(paths.prepared(dataset)) or f"no trained runs for {dataset}"
        files.write_json(out, {"dataset": dataset, "skipped": reason})
        files.write_text(card, f"# {registry.model_name(dataset)}\n\nNo model registered: {reason}\n")
        print(f"{dataset}: nothing to register ({reason})")
        return out
    meta, record, model, balance = max(candidates, key=lambda r: r[0]["val_metrics"][metric])
    x_val, y_val, classes = prepared.load_part(paths.prepared(dataset), "val")
    val_fingerprint = files.fingerprint_arrays(x_val, y_val)
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
    service_uri = _log_service_model(params, paths, meta, paths.model_dir(dataset, model, balance),
                                     (record.get("calibration") or {}).get("temperature"))
    tags["keras_model_uri"] = meta["model_uri"]
    from emorec.serving.service_model import serving_config

    infer = section(params, "infer")
    tags["serving_config"] = json.dumps(serving_config(
        infer.get("detector"), section(params, "detectors").get(infer.get("detector")), infer), sort_keys=True)
    decision = registry.register_and_maybe_promote(
        dataset=dataset, run={**meta, "model_uri": service_uri}, tags=tags, metric=metric, margin=float(cfg.get("margin", 0.0)),
        lock_path=registry.lock_file_for(paths.root), score_champion_on_candidate_data=champion_score,
        auto_promote=bool(cfg.get("auto_promote", True)))
    write_model_card(card, decision, record, meta, tags)
    with mlflow.start_run(run_id=meta["run_id"]):
        mlflow.log_artifact(str(card), artifact_path="model_card")
    files.write_json(out, {**decision.to_dict(), "candidates": [
        {"run": r[1]["provenance"]["run_name"], f"val_{metric}": r[0]["val_metrics"][metric]} for r in candidates]})
    print(f"{dataset}: registered {decision.model_name} v{decision.version} from {tags['run_name']} "
          f"(val {metric} {decision.candidate_score:.4f}); "
          + ("champion" if decision.promoted else "challenger") + f": {decision.reason}")
    return out


def distilled_candidates(params: dict, paths: Paths, dataset: str) -> list[tuple]:
    """The `distill` stage's student, when it learned from this dataset: one more candidate,
    chosen or not by the same validation metric as the grid's runs."""
    from emorec.stages import distill

    student_dataset, model, _ = distill.student_of(params)
    folder, record = distill.model_dir(paths, params), distill.record_path(paths)
    if student_dataset != dataset:
        return []
    if not record.is_file():
        raise EmorecError(f"{record}: missing; run the distill stage before register")
    evaluation = files.read_json(record)
    if "skipped" in evaluation:          # no student (its data is absent): nothing to offer
        return []
    if not (folder / "run.json").is_file():
        raise EmorecError(f"{folder}: no trained student; run the distill stage before register")
    return [(files.read_json(folder / "run.json"), evaluation, model, distill.TAG)]


def _log_service_model(params: dict, paths: Paths, meta: dict, folder: Path, temperature: float | None) -> str:
    """The version registered is the served pyfunc (the infer: block's detector inside, the
    trained .keras file as classifier, and the softmax temperature that evaluate fitted on
    validation), logged into the candidate's own run."""
    import mlflow

    from emorec.serving.service_model import log_service_model

    infer = section(params, "infer")
    detector = infer["detector"]
    settings = dict((params.get("detectors") or {}).get(detector) or {})
    if settings.get("weights"):
        weights = Path(settings["weights"])
        weights = weights if weights.is_absolute() else paths.root / weights
        if not weights.is_file():
            raise EmorecError(f"detectors.{detector}.weights: {weights} not found; the registered model "
                              "carries the infer.detector inside it")
        settings["weights"] = str(weights)
    with mlflow.start_run(run_id=meta["run_id"]):
        spec = {**meta["input_spec"], **({"temperature": temperature} if temperature else {})}
        info = log_service_model(folder / "model.keras", spec, detector, settings, infer=infer)
    return info.model_uri
