"""Repeated training studies: stratified k-fold cross-validation (the paper's 5-fold run of
its custom MobileNet) and N seeds of one configuration (mean +- std instead of one draw).

Each fold or seed is an ordinary training run (emorec.training.fit.train) tagged as a child
of one MLflow parent run (`mlflow.parentRunId`, which is how MLflow nests runs), so the
UI shows them grouped. A fold's model picks its best epoch on an inner validation split
carved from the fold's training part, and is scored on the held-out fold it never saw.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emorec import grid
from emorec.config import section
from emorec.errors import EmorecError


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """k disjoint index arrays covering every item, each with the class mix of the whole."""
    if k < 2:
        raise EmorecError(f"params.yaml: crossval.folds must be at least 2, got {k}")
    counts = np.bincount(labels)
    if counts[counts > 0].min() < k:
        raise EmorecError(f"crossval: a class has fewer than {k} images; lower crossval.folds")
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for c in np.flatnonzero(counts):
        idx = rng.permutation(np.flatnonzero(labels == c))
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
        offset += len(idx)   # rotate, so no fold collects every class's remainder
    return [np.sort(np.array(f)) for f in folds]


def inner_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices: a stratified `fraction` held out for checkpointing."""
    rng = np.random.default_rng(seed)
    val = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        val.extend(idx[: max(1, int(round(len(idx) * fraction)))])
    val = np.sort(np.array(val, dtype=int))
    return np.setdiff1d(np.arange(len(labels)), val), val


@dataclass
class Summary:
    values: list[dict]

    def mean_std(self, key: str) -> tuple[float, float]:
        xs = np.array([v[key] for v in self.values], dtype=float)
        return float(xs.mean()), float(xs.std(ddof=1)) if len(xs) > 1 else 0.0

    def to_dict(self) -> dict:
        out = {"n": len(self.values), "runs": self.values}
        for key in ("accuracy", "macro_f1"):
            m, s = self.mean_std(key)
            out[key] = {"mean": m, "std": s}
        # official sub-splits of the test set (FER2013's PrivateTest): only where every run has them
        shared = set.intersection(*(set(v.get("subsets") or {}) for v in self.values)) if self.values else set()
        if shared:
            out["subsets"] = {}
            for name in sorted(shared):
                xs = np.array([v["subsets"][name]["accuracy"] for v in self.values], dtype=float)
                out["subsets"][name] = {"mean": float(xs.mean()), "std": float(xs.std(ddof=1)) if len(xs) > 1 else 0.0}
        return out


def train_and_score(*, model_name, arch, cfg, x_fit, y_fit, x_val, y_val, x_score, y_score,
                    classes, run_name, experiment_id, log_params, tags, score_ids=None,
                    probs_out: dict | None = None, fit_sources=None) -> dict:
    """One child run: train with (x_val) for checkpointing, score on (x_score). With the
    scored faces' ids, also per official sub-split (FER2013's PrivateTest / PublicTest).
    `probs_out`, when given, receives the model's "val" and "score" probabilities (for an
    ensemble of the study's runs). `fit_sources`: each training face's source dataset, for
    `train.source_prior`."""
    import mlflow

    from emorec.training import fit as training

    with tempfile.TemporaryDirectory(prefix="emorec-study-") as tmp:
        result = training.train(
            model_name=model_name, arch=arch, cfg=cfg, train_images=x_fit, train_labels=y_fit,
            val_images=x_val, val_labels=y_val, classes=classes, out_dir=Path(tmp) / "model",
            curves_dir=Path(tmp) / "curves", run_name=run_name, experiment_id=experiment_id,
            log_params=log_params, tags=tags, train_sources=fit_sources)
        wanted = {"score": x_score, **({"val": x_val} if probs_out is not None else {})}
        predicted = model_probs(Path(tmp) / "model", wanted)
        probs = predicted["score"]
        if probs_out is not None:
            probs_out.update(predicted)
    scores = score_probs(probs, y_score, score_ids, classes)
    with mlflow.start_run(run_id=result.run_id):
        mlflow.log_metrics({"score_accuracy": scores["accuracy"], "score_macro_f1": scores["macro_f1"]})
    return {"run_id": result.run_id, **scores, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
            "seconds": round(result.seconds, 1)}


def score_probs(probs: np.ndarray, y_score, score_ids, classes) -> dict:
    """A run's softmax on the score split -> accuracy, macro-F1, n and, with the faces' ids,
    the same per official sub-split: one scoring for a study's own runs and a reused grid run."""
    from emorec.evaluation import metrics as evaluation
    from emorec.evaluation import scoring

    metrics = evaluation.compute_metrics(y_score, probs.argmax(1), classes)
    subsets = scoring.subsets(probs, y_score, score_ids, classes)
    return {"accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"], "n": metrics["n"],
            **({"subsets": subsets} if subsets else {})}


def model_probs(model_dir: Path, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A trained run's folder -> its softmax on each named image set (the model loaded once)."""
    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.models.loading import load_model

    model, meta = load_model(model_dir)
    spec = InputSpec.from_dict(meta["input_spec"])
    return {name: model.predict(to_model_input(x, spec), batch_size=256, verbose=0) for name, x in images.items()}


def ensemble_score(members: list[dict], y_val, y_score, score_ids, classes) -> dict:
    """The study's runs as one ensemble: the mean of their softmax probabilities. Validation
    says whether it pays (its gain over the members' mean); the score split only reports."""
    from emorec.evaluation import scoring
    from emorec.evaluation.metrics import compute_metrics

    val = np.mean([m["val"] for m in members], axis=0)
    score = np.mean([m["score"] for m in members], axis=0)
    single_val = float(np.mean([(m["val"].argmax(1) == y_val).mean() for m in members]))
    val_acc = float((val.argmax(1) == y_val).mean())
    metrics = compute_metrics(y_score, score.argmax(1), classes)
    return {"members": len(members), "validation_accuracy": round(val_acc, 4),
            "validation_gain": round(val_acc - single_val, 4),
            "accuracy": round(metrics["accuracy"], 4), "macro_f1": round(metrics["macro_f1"], 4),
            "subsets": scoring.subsets(score, y_score, score_ids, classes)}


def study_config(params: dict, dataset: str, model: str, seed: int, extra: dict | None = None):
    """The grid's training config for `model` on `dataset`, with a study's own overrides."""
    from emorec.training import fit as training

    model_params = dict(section(params, "models", model))
    scope = grid.profile(params)
    cfg = training.TrainConfig.from_params(section(params, "train"), model_params, seed, dataset, scope,
                                          params.get("train_overrides"))
    for key, value in (extra or {}).items():
        setattr(cfg, key, value)
    return cfg, training.model_arch(model_params, scope)       # the grid's own architecture for that scope


def study_parent(experiment_id: str, name: str, params_to_log: dict, tags: dict) -> str:
    """The MLflow parent run that groups a study's folds or seeds."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=name) as parent:
        mlflow.log_params({k: str(v)[:500] for k, v in params_to_log.items()})
        mlflow.set_tags(tags)
    return parent.info.run_id
