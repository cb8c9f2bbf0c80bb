"""Training one (dataset, model, balance) configuration and logging it to MLflow.

The best validation checkpoint is kept; every epoch's metrics, all params, the model
(with signature and input example), the validation confusion matrix, the training-data
fingerprint, the git commit and the DVC stage go to the MLflow run.

Given a `work_dir` (outside the stage's outputs), a training killed at any point resumes
from its last finished epoch when it is run again with the same settings and data: Keras'
BackupAndRestore keeps the weights, optimizer state and epoch there, with the best
checkpoint, the epoch log and the MLflow run id, which is continued. The outputs are
written only at the end (temp path, then rename), so a killed run leaves none.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emorec import files
from emorec.data.augment import augmented_batches  # noqa: F401  (re-exported: studies, benchmarks)
from emorec.data.preprocess import InputSpec, to_model_input
from emorec.errors import EmorecError
from emorec.models.optimizers import ema_callbacks
from emorec.training.config import MODEL_ONLY_KEYS, TrainConfig, model_arch  # noqa: F401  (re-exported)
from emorec.training.distribute import distributed_data, predict_all, whole_batches
from emorec.training.resume import History, finished_epochs, read_history, truncate_history, work_folder
from emorec.training.sampling import subsample, training_weights  # subsample: crossval's


def frozen_parts(model):
    """(features, head) when the model is a frozen backbone + head, else None."""
    names = {layer.name for layer in model.layers}
    if not {"features", "head"} <= names:
        return None
    features = model.get_layer("features")
    if features.trainable_weights:
        return None
    return features, model.get_layer("head")


class _MlflowEpochLogger:
    """Keras callback that sends each epoch's logs to the active MLflow run."""

    def __new__(cls):
        import keras

        class Logger(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                import mlflow

                clean = {k: float(v) for k, v in (logs or {}).items()
                         if isinstance(v, (int, float, np.floating))}
                lr = self.model.optimizer.learning_rate
                clean["learning_rate"] = float(np.asarray(lr.numpy() if hasattr(lr, "numpy") else lr))
                mlflow.log_metrics(clean, step=epoch + 1)

        return Logger()


@dataclass
class TrainResult:
    model_path: Path
    run_id: str
    val_metrics: dict
    epochs_run: int
    best_epoch: int
    seconds: float
    images_per_second: float


def train(*, cfg: TrainConfig, log_params: dict, **kwargs) -> TrainResult:
    """Train one run (see `_train`) on one device, or on all of them with
    `cfg.distribution: data_parallel` (each device takes `cfg.batch_size` images)."""
    import dataclasses

    from emorec.training import distribute

    plan = distribute.plan(cfg.distribution, cfg.batch_size)
    if cfg.distribution:
        print(f"{kwargs.get('run_name', 'training')}: {plan.engine}, global batch {plan.global_batch}")
    log_params = {**log_params, "devices": plan.devices, "distribution_engine": plan.engine,
                  "global_batch_size": plan.global_batch}
    with plan.scope:
        return _train(cfg=dataclasses.replace(cfg, batch_size=plan.global_batch), log_params=log_params, **kwargs)


def _train(
    *,
    model_name: str,
    arch: dict,
    cfg: TrainConfig,
    train_images: np.ndarray,
    train_labels: np.ndarray,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    classes: tuple[str, ...],
    out_dir: Path,
    curves_dir: Path,
    run_name: str,
    experiment_id: str,
    log_params: dict,
    tags: dict,
    work_dir: Path | None = None,
    train_sources: np.ndarray | None = None,
) -> TrainResult:
    import hashlib
    import shutil

    import keras
    import mlflow

    from emorec import models
    from emorec.evaluation import metrics as evaluation
    from emorec.models import weights
    from emorec.reporting import plots
    from emorec.training.recipe import precision_policy

    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy(precision_policy(cfg.mixed_precision))
    keep = subsample(train_labels, cfg.max_train_images, cfg.seed)
    train_images, train_labels = train_images[keep], train_labels[keep]
    sample_weights = training_weights(cfg.source_prior, train_labels, None if train_sources is None else
                                      np.asarray(train_sources)[keep], len(classes), run_name)
    native = train_images.shape[1]
    spec = InputSpec(size=cfg.input_size or native,
                     channels=cfg.channels or models.input_channels(model_name, train_images.shape[-1]),
                     classes=classes)
    models.check_input(model_name, (spec.size, spec.size, spec.channels))
    resolved = weights.resolve(model_name, cfg.weights, cfg.weights_fallback, cfg.allow_download)
    if resolved.note:
        print(f"{run_name}: {resolved.note}")
    x_train = to_model_input(train_images, spec)
    x_val = to_model_input(val_images, spec)
    model = models.build(model_name, (spec.size, spec.size, spec.channels), len(classes),
                         weights=resolved, **arch)
    frozen = frozen_parts(model)
    cached = bool(frozen and cfg.cache_features and not cfg.online_augmentation and not cfg.batch_augmentation)
    fit_model = model
    if cfg.batch_augmentation and not cached:        # augmentation in a training-only wrapper
        from emorec.training.recipe import BatchAugment, augmented

        fit_model = augmented(model, BatchAugment.from_params(cfg.batch_augmentation), cfg.seed)

    fingerprint = files.fingerprint_arrays(train_images, train_labels)
    key = hashlib.sha256(repr((model_name, sorted(arch.items()), sorted(vars(cfg).items()), fingerprint,
                               files.fingerprint_arrays(val_images, val_labels))).encode()).hexdigest()
    work, resumed = work_folder(work_dir, run_name, key)
    best_weights = work / "best.weights.h5"
    history_tmp = work / "history.csv"
    mode = "min" if "loss" in cfg.monitor else "max"
    checkpoint = keras.callbacks.ModelCheckpoint(str(best_weights), monitor=cfg.monitor, mode=mode,
                                                 save_best_only=True, save_weights_only=True)
    done = finished_epochs(work)
    if resumed and done:
        truncate_history(history_tmp, done)
        best = read_history(history_tmp).get(cfg.monitor, [])
        if best:
            checkpoint.best = min(best) if mode == "min" else max(best)
        print(f"{run_name}: resuming after epoch {done} of {cfg.epochs} from {work}")
    averaging = []
    if cfg.swa_epochs:
        if cached:
            raise EmorecError(f"{run_name}: swa_epochs with a frozen backbone's cached features is not supported; "
                              f"set cache_features: false or swa_epochs: null")
        from emorec.training.averaging import swa_callback

        averaging = [swa_callback(cfg.epochs, cfg.swa_epochs, x_train, (x_val, val_labels), work / "swa.npz")]
    callbacks = [
        keras.callbacks.BackupAndRestore(str(work / "backup"), delete_checkpoint=False),
        *ema_callbacks(cfg.weight_ema),
        *averaging,
        checkpoint,
        keras.callbacks.CSVLogger(str(history_tmp), append=bool(resumed and done)),
        _MlflowEpochLogger(),
    ]
    callbacks += stopping_callbacks(cfg, mode)

    curves_dir.mkdir(parents=True, exist_ok=True)
    run_id = resumed.get("run_id") if resumed else None
    try:
        started = (mlflow.start_run(run_id=run_id) if run_id    # continue the killed run
                   else mlflow.start_run(experiment_id=experiment_id, run_name=run_name))
        with started as run:
            files.write_json(work / "resume.json", {"key": key, "run_id": run.info.run_id})
            if run_id:
                mlflow.set_tag("resumed_after_epoch", str(done))
            else:
                mlflow.log_params({k: str(v)[:500] for k, v in log_params.items()})
                mlflow.log_params({"weights_used": resolved.label, "features_cached": cached,
                                   "n_train_used": len(train_labels), "params_total": model.count_params()})
                mlflow.set_tags({**tags, "weights": resolved.label, "train_data_fingerprint": fingerprint,
                                 "input_spec": str(spec.to_dict())})
            start = time.time()
            _fit(fit_model, frozen if cached else None, cfg, x_train, train_labels, x_val,
                 val_labels, train_images, spec, callbacks, sample_weights)
            seconds = time.time() - start                       # this session's epochs only
            trained = frozen[1] if cached else fit_model
            trained.load_weights(str(best_weights))
            history = History(read_history(history_tmp))    # every epoch, across a resume
            monitored = history.history.get(cfg.monitor, [])
            best_epoch = int(np.argmin(monitored) if mode == "min" else np.argmax(monitored)) + 1
            epochs_run = len(history.history.get("loss", []))
            epochs_now = epochs_run - (done if resumed else 0)

            averaged = None
            if averaging:                # the averaged epochs (a resumed run loaded the earlier ones)
                swa = averaging[0]
                averaged = {"epochs": [e + 1 for e in swa.averaged_epochs], "applied": swa.applied,
                            "chosen": bool(swa.applied and best_epoch == cfg.epochs),
                            "last_epoch_raw": swa.last_epoch_raw}
                mlflow.set_tag("weight_average", "chosen" if averaged["chosen"] else "not chosen")
            probs = predict_all(model, x_val)
            val_metrics = evaluation.compute_metrics(val_labels, probs.argmax(1), classes)
            mlflow.log_metrics({"val_accuracy_best": val_metrics["accuracy"],
                                "val_macro_f1": val_metrics["macro_f1"],
                                "best_epoch": best_epoch, "epochs_run": epochs_run,
                                "train_seconds": seconds,
                                "train_images_per_second": len(x_train) * epochs_now / seconds})

            evaluation.plot_confusion(val_metrics["confusion"], classes,
                                      curves_dir / "val_confusion.png", normalize=True,
                                      title=f"{run_name}: validation (row-normalized)")
            plots.training_curves(history.history, curves_dir / "curves.png", run_name)
            os.replace(history_tmp, curves_dir / "history.csv")
            mlflow.log_artifacts(str(curves_dir), artifact_path="training")

            from mlflow.models import infer_signature

            from emorec.experiments.tracking import log_keras_model

            example = x_val[:2]
            logged = log_keras_model(model, infer_signature(example, probs[:2]), example)
            mlflow.log_dict(spec.to_dict(), "preprocessing.json")

            with files.atomic_path(out_dir) as tmp_dir:
                tmp_dir.mkdir(parents=True)
                shutil.copytree(curves_dir, tmp_dir / "training")   # the figures travel with the model
                model.save(tmp_dir / "model.keras")
                files.write_json(tmp_dir / "run.json", {
                    "run_id": run.info.run_id,
                    "model_uri": logged.model_uri,
                    "experiment_id": experiment_id,
                    "model": model_name,
                    "input_spec": spec.to_dict(),
                    "weights": resolved.label,
                    "weights_note": resolved.note,
                    "features_cached": cached,
                    "params_total": int(model.count_params()),
                    "train_data_fingerprint": fingerprint,
                    "val_metrics": {k: val_metrics[k] for k in ("accuracy", "macro_f1", "n")},
                    "best_epoch": best_epoch, "epochs": cfg.epochs,
                    "epochs_run": epochs_run,
                    "train_seconds": round(seconds, 1),
                    "n_train": int(len(x_train)),
                    "max_train_images": cfg.max_train_images,
                    "mixed_precision": cfg.mixed_precision,
                    "weight_average": averaged,
                })
    except BaseException:
        if work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        raise
    else:
        shutil.rmtree(work, ignore_errors=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return TrainResult(out_dir / "model.keras", run.info.run_id, val_metrics, epochs_run,
                       best_epoch, seconds, len(x_train) * epochs_now / max(seconds, 1e-9))


def stopping_callbacks(cfg: TrainConfig, mode: str) -> list:
    """Early stopping and plateau LR halving on `cfg.monitor`, as the config asks."""
    import keras

    out = []
    if cfg.early_stopping_patience:
        out.append(keras.callbacks.EarlyStopping(monitor=cfg.monitor, mode=mode, patience=cfg.early_stopping_patience))
    if cfg.reduce_lr_patience:
        out.append(keras.callbacks.ReduceLROnPlateau(
            monitor=cfg.monitor, mode=mode, patience=cfg.reduce_lr_patience,
            factor=cfg.reduce_lr_factor, min_lr=cfg.min_learning_rate))
    return out


def compile_for(model, cfg: TrainConfig, n_train: int) -> None:
    from emorec.models import losses, optimizers

    steps_per_epoch = int(np.ceil(n_train / cfg.batch_size))
    hold = cfg.swa_epochs and cfg.swa_rate is not None      # weight averaging holds the rate after the decay
    decay_epochs = cfg.epochs - cfg.swa_epochs if hold else cfg.epochs
    model.compile(optimizer=optimizers.make(cfg.optimizer, cfg.learning_rate, cfg.lr_schedule,
                                            steps_per_epoch * decay_epochs, cfg.weight_decay,
                                            steps_per_epoch * cfg.warmup_epochs, cfg.weight_ema,
                                            floor=cfg.swa_rate if hold else None),
                  loss=losses.make(cfg.label_smoothing), metrics=["accuracy"],
                  jit_compile=cfg.jit_compile)


def _fit(model, frozen, cfg: TrainConfig, x_train, y_train, x_val, y_val, train_images, spec,
         callbacks, sample_weights=None):
    """Fit end to end, or - for a frozen backbone without online augmentation - compute the
    backbone's features once and fit only the head on them."""
    if frozen is not None:
        features, head = frozen
        print(f"frozen backbone: computing features once for {len(x_train)} + {len(x_val)} images")
        f_train = predict_all(features, x_train, verbose=cfg.verbose and 1)
        f_val = predict_all(features, x_val)
        compile_for(head, cfg, len(f_train))
        train, val = distributed_data(f_train, y_train, f_val, y_val, cfg) if cfg.distribution else \
            ((f_train, y_train), (f_val, y_val))
        return _fit_on(head, train, val, cfg, callbacks, sample_weights)
    compile_for(model, cfg, len(x_train))
    if cfg.online_augmentation:
        data = augmented_batches(train_images, y_train, spec, cfg.batch_size,
                                 cfg.online_augmentation, cfg.seed, full_batches_only=bool(cfg.distribution),
                                 weights=sample_weights)
        val = whole_batches(x_val, y_val, cfg.batch_size) if cfg.distribution else (x_val, y_val)
        return model.fit(data, validation_data=val, epochs=cfg.epochs, callbacks=callbacks, verbose=cfg.verbose)
    train, val = distributed_data(x_train, y_train, x_val, y_val, cfg) if cfg.distribution else \
        ((x_train, y_train), (x_val, y_val))
    return _fit_on(model, train, val, cfg, callbacks, sample_weights)


def _fit_on(model, train, val, cfg: TrainConfig, callbacks, sample_weights=None):
    if isinstance(train, tuple):
        return model.fit(*train, sample_weight=sample_weights, validation_data=val, epochs=cfg.epochs,
                         batch_size=cfg.batch_size, shuffle=True, callbacks=callbacks, verbose=cfg.verbose)
    return model.fit(train, validation_data=val, epochs=cfg.epochs, callbacks=callbacks, verbose=cfg.verbose)
