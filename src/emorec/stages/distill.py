"""DVC stage `distill`: one student trained towards the `seeds` study's ensemble.

The seeds study trains the FER2013 champion's recipe with three seeds; their mean
probabilities (each member also seeing the mirror) are the teacher. The student, the same
architecture and recipe with the grid's seed, is trained towards half its label and half
the teacher (`distill.weight`), for a longer schedule than the grid's (the soft targets keep
it from overfitting: reports/recipe/README.md). It is scored like a grid run (validation,
test, ten views, temperature fitted on validation) and `register` offers it as a candidate
for its dataset: validation decides whether it becomes the champion.

Its folder, models/<dataset>/<model>-distilled, has the layout of a grid run's, so the
registry, exports and inference treat it as one.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.errors import EmorecError
from emorec.stages import distill_summary

TAG = "distilled"   # the folder's suffix, where a grid run has its balance mode
TTA_CHOICES = (None, "flip", "ten")


def settings(params: dict) -> dict:
    """params.yaml's `distill:` block, checked: every key known, every value in range."""
    cfg = dict(section(params, "distill"))
    known = {"weight", "teacher_tta", "epochs", "early_stopping_patience"}
    unknown = sorted(set(cfg) - known)
    if unknown:
        raise EmorecError(f"params.yaml: distill has unknown key(s) {unknown}; known: {sorted(known)}")
    weight = cfg.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 < weight <= 1:
        raise EmorecError(f"params.yaml: distill.weight must be a number in (0, 1], got {weight!r}")
    if cfg.get("teacher_tta") not in TTA_CHOICES:
        raise EmorecError(f"params.yaml: distill.teacher_tta must be null, flip or ten, got {cfg.get('teacher_tta')!r}")
    for key, least in (("epochs", 1), ("early_stopping_patience", 1)):
        value = cfg.get(key)
        if key == "early_stopping_patience" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise EmorecError(f"params.yaml: distill.{key} must be an integer >= {least}, got {value!r}")
    return cfg


def student_of(params: dict) -> tuple[str, str, str]:
    """(dataset, model, balance) of the student: the seeds study's run, whose members teach."""
    study = section(params, "seeds")
    return study["dataset"], study["model"], study.get("balance", "plain")


def model_dir(paths: Paths, params: dict) -> Path:
    dataset, model, _ = student_of(params)
    return paths.model_dir(dataset, model, TAG)


def record_path(paths: Paths) -> Path:
    return distill_summary.record_path(paths.root)


def teacher_members(paths: Paths, params: dict) -> list[str]:
    """The seeds study's members: the grid run's folder and each extra seed's MLflow model."""
    dataset, model, balance = student_of(params)
    study = paths.root / "reports" / "seeds" / "seeds.json"
    if not study.is_file():
        raise EmorecError(f"{study}: missing; the teacher is the seeds study (dvc repro seeds)")
    run_name = paths.run_name(dataset, model, balance)
    records = [r for r in files.read_json(study).get("runs", []) if r.get("run") == run_name]
    if not records or "skipped" in records[0]:
        why = records[0]["skipped"] if records else "no record of it"
        raise EmorecError(f"{study}: the seeds study of {run_name} has no members ({why}); no teacher")
    members = []
    for member in records[0]["runs"]:
        if member.get("source") == "grid run":
            members.append(str(paths.model_dir(dataset, model, balance) / "model.keras"))
        elif member.get("run_id"):
            members.append(f"runs:/{member['run_id']}/model")
        else:
            raise EmorecError(f"{study}: seed {member.get('seed')} has neither a grid run nor an MLflow run id")
    if len(members) < 2:
        raise EmorecError(f"{study}: a teacher needs at least two members, the study has {len(members)}")
    return members


def run(params: dict | None = None, root: Path | None = None) -> Path:
    """Build the teacher, train and score the student, write its folder and record."""
    import keras

    from emorec import models
    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.experiments import tracking
    from emorec.training import distill, standalone

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = settings(params)
    dataset, model_name, balance = student_of(params)
    grid.check_names(params, dataset, model_name, balance)
    reason = (prepared.missing_reason(paths.prepared(dataset))
              or runs.not_trained(params, paths.root, grid.Run(dataset, model_name, balance)))
    if reason:   # like the seeds study it learns from: it says so rather than fail
        return _skipped(paths, params, f"{paths.run_name(dataset, model_name, balance)} is not trained: {reason}")
    seed = int(section(params, "seed"))
    run_name = paths.run_name(dataset, model_name, TAG)
    data_dir = paths.prepared(dataset)
    x_tr, y_tr, classes = prepared.load_part(data_dir, prepared.train_part(balance))
    x_va, y_va, _ = prepared.load_part(data_dir, "val")
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    members = teacher_members(paths, params)
    print(f"{run_name}: teacher = {len(members)} members of the seeds study, views {cfg.get('teacher_tta')}", flush=True)
    teacher = distill.teacher_probs(members, (x_tr, y_tr), (x_va, y_va), classes, cfg.get("teacher_tta"))
    sets = {"epochs": cfg["epochs"], "early_stopping_patience": cfg.get("early_stopping_patience"),
            "verbose": int((params.get("console") or {}).get("keras_verbose", 2))}
    with tempfile.TemporaryDirectory(prefix="emorec-distill-") as tmp:
        targets = distill.write_targets(Path(tmp) / "teacher.npz", teacher, x_tr, y_tr, classes, members,
                                        cfg.get("teacher_tta"))
        plan = {"name": run_name, "model": model_name, "scope": grid.profile(params), "seed": seed,
                "dataset": dataset, "keep_weights": True,
                "teacher": {"targets": str(targets), "weight": float(cfg["weight"])}, "set": sets}
        result = standalone.train_one(plan, params, {"train": (x_tr, y_tr), "val": (x_va, y_va), "classes": classes},
                                      Path(tmp))
        spec = InputSpec.from_dict(result["input_spec"])
        keras.utils.set_random_seed(seed)
        student = models.build(model_name, (spec.size, spec.size, spec.channels), len(classes), **result["arch"])
        student.load_weights(str(Path(tmp) / f"{run_name}.weights.h5"))

    def predict(faces):
        return student.predict(to_model_input(faces, spec), batch_size=256, verbose=0)

    with tempfile.TemporaryDirectory(prefix="emorec-distill-figures-") as figures:
        return _score_and_write(paths, params, cfg, student, predict, spec, result, teacher, members,
                                experiment_id, Path(figures))


def _score_and_write(paths, params, cfg, student, predict, spec, result, teacher, members, experiment_id,
                     figures: Path) -> Path:
    """Score the student like a grid run; log it; write its folder and the study's record."""
    import mlflow

    from emorec.data.preprocess import to_model_input
    from emorec.evaluation import metrics as evaluation
    from emorec.evaluation import scoring
    from emorec.experiments import tracking

    dataset, model_name, balance = student_of(params)
    seed = int(section(params, "seed"))
    run_name = paths.run_name(dataset, model_name, TAG)
    data_dir = paths.prepared(dataset)
    x_tr, y_tr, classes = prepared.load_part(data_dir, prepared.train_part(balance))
    x_va, y_va, _ = prepared.load_part(data_dir, "val")
    x_te, y_te, _ = prepared.load_part(data_dir, "test")
    val_probs, test_probs = predict(x_va), predict(x_te)
    val_metrics = evaluation.compute_metrics(y_va, val_probs.argmax(1), classes)
    test_metrics = evaluation.compute_metrics(y_te, test_probs.argmax(1), classes)
    extra = scoring.score(predict, x_va, y_va, x_te, y_te, test_probs, prepared.load_ids(data_dir, "test"), classes,
                          (params.get("evaluate") or {}).get("tta"),
                          list((params.get("evaluate") or {}).get("face_sizes") or []),
                          figures / "reliability.png", f"{run_name}: test reliability")
    _figures(result, val_metrics, test_metrics, classes, run_name, figures)
    temperature = extra["calibration"]["temperature"]
    fingerprint = files.fingerprint_arrays(x_tr, y_tr)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as mlrun:
        mlflow.set_tags({"dataset": dataset, "model": model_name, "balance": TAG, "study": "distill",
                         "grid_scope": grid.profile(params), "git_commit": tracking.git_commit(paths.root),
                         "dvc_stage": tracking.dvc_stage("distill"), "hardware": tracking.hardware(),
                         "train_data_fingerprint": fingerprint, "input_spec": str(spec.to_dict())})
        mlflow.log_params({"dataset": dataset, "model": model_name, "train_part": prepared.train_part(balance),
                           "seed": seed, "teacher_members": ", ".join(members)[:500],
                           "teacher_tta": str(cfg.get("teacher_tta")), "distill_weight": cfg["weight"],
                           **{f"train.{k}": str(v)[:500] for k, v in result["config"].items()},
                           "params_total": result["params_total"], "n_train": len(y_tr), "n_val": len(y_va)})
        for epoch, acc in enumerate(result["val_accuracy_per_epoch"], 1):
            mlflow.log_metric("val_accuracy", acc, step=epoch)
        mlflow.log_metrics({
            "teacher_val_accuracy": teacher["val_accuracy"], "val_accuracy_best": val_metrics["accuracy"],
            "val_macro_f1": val_metrics["macro_f1"], "best_epoch": result["best_epoch"],
            "epochs_run": result["epochs_run"], "train_seconds": result["seconds"],
            "train_images_per_second": result["images_per_second"], "test_accuracy": test_metrics["accuracy"],
            "test_macro_f1": test_metrics["macro_f1"], "temperature": temperature,
            "test_ece_raw": extra["calibration"]["ece"]["test_raw"], "test_ece": extra["calibration"]["ece"]["test_scaled"],
            **({"test_accuracy_tta": extra["tta"]["accuracy"]} if "tta" in extra else {}),
            **{f"test_accuracy_{n}": v["accuracy"] for n, v in extra["subsets"].items()}})
        from mlflow.models import infer_signature

        example = to_model_input(x_va[:2], spec)
        logged = tracking.log_keras_model(student, infer_signature(example, val_probs[:2]), example)
        mlflow.log_dict({**spec.to_dict(), "temperature": temperature}, "preprocessing.json")
        mlflow.log_artifacts(str(figures), artifact_path="distill")
    meta = {
        "run_id": mlrun.info.run_id, "model_uri": logged.model_uri, "experiment_id": experiment_id,
        "model": model_name, "input_spec": spec.to_dict(), "weights": "scratch", "weights_note": None,
        "features_cached": False, "params_total": result["params_total"], "train_data_fingerprint": fingerprint,
        "val_metrics": {k: val_metrics[k] for k in ("accuracy", "macro_f1", "n")},
        "best_epoch": result["best_epoch"], "epochs": result["epochs"], "epochs_run": result["epochs_run"],
        "train_seconds": result["seconds"], "n_train": int(len(y_tr)), "max_train_images": None,
        "mixed_precision": result["config"].get("mixed_precision", False),
        "distilled_from": members, "distill_weight": float(cfg["weight"]),
    }
    provenance = {
        "run_name": run_name, "dataset": dataset, "model": model_name, "balance": TAG,
        "data": f"{dataset} (complete)", "input": f"{spec.size}px x {spec.channels} channel(s)",
        "protocol": grid.protocol_for(params, dataset), "test_set": "the grid run's test split",
        "seed": seed, "epochs": result["epochs"], "epochs_run": result["epochs_run"], "best_epoch": result["best_epoch"],
        "weights": "scratch", "n_train": int(len(y_tr)), "max_train_images": None,
        "params_total": result["params_total"], "grid_scope": grid.profile(params), "train_seconds": result["seconds"],
        "hardware": tracking.hardware(), "git_commit": tracking.git_commit(paths.root), "mlflow_run_id": mlrun.info.run_id,
        "train_data_fingerprint": fingerprint,
        "evaluate": {"tta": (params.get("evaluate") or {}).get("tta"),
                     "face_sizes": (params.get("evaluate") or {}).get("face_sizes"),
                     "temperature_fitted_on": "validation split"},
    }
    teacher_record = {"members": members, "views": cfg.get("teacher_tta"), "weight": float(cfg["weight"]),
                      "temperature": teacher["temperature"], "validation_accuracy": round(teacher["val_accuracy"], 4),
                      "member_validation_accuracy": [round(a, 4) for a in teacher["member_val_accuracy"]],
                      "agrees_with_training_labels": round(teacher["train_agreement"], 4)}
    with files.atomic_path(model_dir(paths, params)) as folder:
        (folder / "training").mkdir(parents=True)
        for name in ("curves.png", "val_confusion.png", "history.csv"):
            shutil.copyfile(figures / name, folder / "training" / name)
        student.save(folder / "model.keras")
        files.write_json(folder / "run.json", meta)
    record = {"test": test_metrics, "validation": meta["val_metrics"], **extra, "provenance": provenance,
              "teacher": teacher_record, "history": result["history"]}
    summary = distill_summary.markdown(record)
    with files.atomic_path(record_path(paths).parent) as report_dir:
        shutil.copytree(figures, report_dir)
        files.write_json(report_dir / "distill.json", record)
        files.write_text(report_dir / "distill.md", summary)
    print(summary)
    return record_path(paths)


def _skipped(paths: Paths, params: dict, reason: str) -> Path:
    """No student: its folder says why (DVC needs the output), and so does its record."""
    dataset, model_name, _ = student_of(params)
    with files.atomic_path(model_dir(paths, params)) as folder:
        folder.mkdir(parents=True)
        files.write_json(folder / "not_trained.json", {"skipped": reason})
    record = {"run": paths.run_name(dataset, model_name, TAG), "skipped": reason}
    with files.atomic_path(record_path(paths).parent) as report_dir:
        report_dir.mkdir(parents=True)
        files.write_json(report_dir / "distill.json", record)
        files.write_text(report_dir / "distill.md", distill_summary.markdown(record))
    print(f"{record['run']}: skipped ({reason})")
    return record_path(paths)


def _figures(result: dict, val_metrics: dict, test_metrics: dict, classes, run_name: str, out: Path) -> None:
    """The student's curves, validation confusion and epoch log, as a grid run's folder has them."""
    from emorec.evaluation import metrics as evaluation
    from emorec.reporting import plots

    history = result["history"]
    plots.training_curves(history, out / "curves.png", f"{run_name} (distilled)")
    evaluation.plot_confusion(val_metrics["confusion"], classes, out / "val_confusion.png", normalize=True,
                              title=f"{run_name}: validation (row-normalized)")
    evaluation.plot_confusion(test_metrics["confusion"], classes, out / "confusion_normalized.png", normalize=True,
                              title=f"{run_name}: test (row-normalized)")
    keys = sorted(history)
    rows = ["epoch," + ",".join(keys)]
    rows += [f"{i}," + ",".join(f"{history[k][i]:.6g}" for k in keys) for i in range(len(history[keys[0]]))]
    files.write_text(out / "history.csv", "\n".join(rows) + "\n")
