"""Training away from the pipeline: the same TrainConfig, model zoo and recipe as the
train stage, on a machine that has Keras and a backend (JAX on the GPU machine) but
neither TensorFlow, MLflow nor DVC. Runs the GPU profile and the recipe ablation.

The data travels as a *pack* (uint8 images and labels of the train and validation
splits, xz-compressed): the test split never goes there, so nothing on that machine can
choose by it. Weights come back and are scored on test here (`emorec.training.recipe_report`).

    python -m emorec.training.standalone plan.yaml --pack data/gpu/fer2013 --out OUT --budget 540

A lent GPU comes with minutes, not hours, and its speed is not known beforehand: with
`--time-box S` each run first times a few epochs (a throwaway probe), then trains as many
of its planned epochs as fit in S seconds, with the schedule laid out over that count. The
result records both counts. `--deadline` stops any fit whose next epoch would not end in time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import lzma
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emorec.errors import EmorecError

PACK_PARTS = ("train", "val")


def write_pack(prepared: Path, stem: Path, train_part: str = "train") -> Path:
    """data/prepared/<ds>/{train,val}.npz -> <stem>.json + <stem>.u8.xz (images then labels per part)."""
    from emorec.data import prepared as prep

    meta, blobs = {"parts": {}}, []
    for name, part in zip(PACK_PARTS, (train_part, "val")):
        images, labels, classes = prep.load_part(prepared, part)
        meta["parts"][name] = {"n": int(len(labels)), "shape": list(images.shape[1:])}
        meta["classes"] = list(classes)
        blobs += [np.ascontiguousarray(images, np.uint8).tobytes(), labels.astype(np.uint8).tobytes()]
    stem.parent.mkdir(parents=True, exist_ok=True)
    tmp = stem.with_suffix(".u8.xz.tmp")
    tmp.write_bytes(lzma.compress(b"".join(blobs), preset=6))
    tmp.replace(stem.with_suffix(".u8.xz"))
    stem.with_suffix(".json").write_text(json.dumps(meta))
    return stem.with_suffix(".u8.xz")


def read_pack(stem: Path) -> dict:
    """{'train': (images, labels), 'val': (...), 'classes': (...)}; sizes are checked."""
    meta = json.loads(stem.with_suffix(".json").read_text())
    raw = lzma.decompress(stem.with_suffix(".u8.xz").read_bytes())
    out, at = {"classes": tuple(meta["classes"])}, 0
    for name in PACK_PARTS:
        n, shape = meta["parts"][name]["n"], tuple(meta["parts"][name]["shape"])
        size = n * int(np.prod(shape))
        if at + size + n > len(raw):
            raise EmorecError(f"{stem}: pack is shorter than its json says ({name})")
        images = np.frombuffer(raw, np.uint8, size, at).reshape((n, *shape))
        labels = np.frombuffer(raw, np.uint8, n, at + size).astype(np.int64)
        out[name], at = (images, labels), at + size + n
    if at != len(raw):
        raise EmorecError(f"{stem}: pack holds {len(raw) - at} bytes more than its json says")
    return out


def config_for(params: dict, model: str, scope: str, seed: int, dataset: str, sets: dict):
    """TrainConfig and arch of one run, with `sets` (train fields, or arch.<key>) on top."""
    from emorec.training.config import TrainConfig, model_arch

    model_params = params["models"][model]
    cfg = TrainConfig.from_params(params["train"], model_params, seed, dataset, scope, params.get("train_overrides"))
    arch = model_arch(model_params, scope)
    fields = {k: v for k, v in sets.items() if not k.startswith("arch.")}
    arch.update({k[5:]: v for k, v in sets.items() if k.startswith("arch.")})
    unknown = sorted(set(fields) - set(TrainConfig.__dataclass_fields__))
    if unknown:
        raise EmorecError(f"unknown training setting(s) {unknown}")
    cfg = dataclasses.replace(cfg, **fields)
    TrainConfig.from_params({**dataclasses.asdict(cfg)}, {}, seed)      # re-validate the result
    return cfg, arch


def hardware() -> str:
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return f"{jax.devices()[0].device_kind} ({backend})"
    import platform

    return f"{platform.processor() or platform.machine()} ({backend})"


def epoch_clock(deadline: float | None):
    """A callback that times every epoch and stops the fit when the next epoch (as long as the
    slowest so far) would end after `deadline` (time.time() seconds); `.stopped` says so."""
    import keras

    class EpochClock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.stopped, self._start = [], False, 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(round(time.time() - self._start, 3))
            if deadline is not None and time.time() + max(self.seconds) > deadline:
                self.stopped = True
                self.model.stop_training = True

    return EpochClock()


def epochs_within(seconds_left: float, probe_seconds: list, planned: int, reserve: float = 20.0,
                  step: int = 1) -> int:
    """How many epochs fit in `seconds_left`: the probe's first epoch is compile time (paid again
    by the real fit), the median of the others the epoch time (on the H200 one probe epoch of
    three side-by-side runs took 3.4 s against 2.4 and 1.9 s, and cost that run 30 epochs with
    the slowest); `reserve` covers the final prediction and saving, `--deadline` any overrun.
    Rounded down to a multiple of `step` (runs boxed side by side then agree), at least 1, at
    most `planned`."""
    if len(probe_seconds) < 2:
        raise EmorecError("the time-box probe needs at least 2 timed epochs")
    per_epoch = float(np.median(probe_seconds[1:]))
    compile_s = max(probe_seconds[0] - per_epoch, 0.0)
    fit = int(min(planned, (seconds_left - compile_s - reserve) // per_epoch))
    return max(1, fit // step * step if fit >= step else fit)


def train_one(run: dict, params: dict, data: dict, out: Path, deadline: float | None = None) -> dict:
    """Fit one run; best validation epoch kept; weights to out/<name>.weights.h5 when asked."""
    import keras

    from emorec import models
    from emorec.data.augment import augmented_batches
    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.evaluation.metrics import compute_metrics
    from emorec.training.averaging import swa_callback
    from emorec.training.distill import read_targets, soft_targets
    from emorec.training.fit import compile_for, ema_callbacks, stopping_callbacks
    from emorec.training.recipe import BatchAugment, augmented, precision_policy

    cfg, arch = config_for(params, run["model"], run.get("scope", "gpu"), int(run.get("seed", params["seed"])),
                           run.get("dataset", "fer2013"), run.get("set") or {})
    keras.utils.set_random_seed(cfg.seed)
    keras.mixed_precision.set_global_policy(precision_policy(cfg.mixed_precision))
    (x_tr, y_tr), (x_va, y_va), classes = data["train"], data["val"], data["classes"]
    spec = InputSpec(size=cfg.input_size or x_tr.shape[1], channels=x_tr.shape[-1], classes=classes)
    model = models.build(run["model"], (spec.size, spec.size, spec.channels), len(classes), **arch)
    fit_model = (augmented(model, BatchAugment.from_params(cfg.batch_augmentation), cfg.seed)
                 if cfg.batch_augmentation else model)
    best = Path(tempfile.gettempdir()) / f"emorec-{run['name']}.best.weights.h5"   # not in out: a kill leaves no stray file
    mode = "min" if "loss" in cfg.monitor else "max"
    checkpoint = keras.callbacks.ModelCheckpoint(str(best), monitor=cfg.monitor, mode=mode,
                                                 save_best_only=True, save_weights_only=True)
    clock = epoch_clock(deadline)
    x_val = to_model_input(x_va, spec)
    y_fit, y_val_fit = y_tr, y_va
    if run.get("teacher"):               # distillation: soft targets from a teacher file (training.distill)
        if not isinstance(run["teacher"], dict) or set(run["teacher"]) != {"targets", "weight"}:
            raise EmorecError(f"plan run {run['name']!r}: teacher must be {{targets: <file>, weight: <0-1>}}, "
                              f"got {run['teacher']!r}")
        teacher = read_targets(Path(run["teacher"]["targets"]), x_tr, y_tr, classes)
        y_fit = soft_targets(y_tr, teacher, float(run["teacher"]["weight"]))
        y_val_fit = np.eye(len(classes), dtype=np.float32)[y_va]
    averaging = (swa_callback(cfg.epochs, cfg.swa_epochs, to_model_input(x_tr, spec), (x_val, y_val_fit))
                 if cfg.swa_epochs else None)
    callbacks = [*ema_callbacks(cfg.weight_ema), *([averaging] if averaging else []), checkpoint,
                 *stopping_callbacks(cfg, mode), clock]
    compile_for(fit_model, cfg, len(y_tr))
    if y_fit.ndim == 2:                  # targets are distributions: the categorical loss, same optimizer
        fit_model.compile(optimizer=fit_model.optimizer, metrics=["accuracy"], jit_compile=cfg.jit_compile,
                          loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing))
    start = time.time()
    if cfg.online_augmentation:          # the default CPU recipe: host-side warps per image
        batches = augmented_batches(x_tr, y_fit, spec, cfg.batch_size, cfg.online_augmentation, cfg.seed)
        history = fit_model.fit(batches, validation_data=(x_val, y_val_fit), epochs=cfg.epochs,
                                callbacks=callbacks, verbose=cfg.verbose)
    else:
        history = fit_model.fit(to_model_input(x_tr, spec), y_fit, validation_data=(x_val, y_val_fit),
                                epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True,
                                callbacks=callbacks, verbose=cfg.verbose)
    seconds = time.time() - start
    fit_model.load_weights(str(best))
    probs = model.predict(x_val, batch_size=512, verbose=0)
    val = compute_metrics(y_va, probs.argmax(1), classes)
    if run.get("keep_weights"):
        model.save_weights(str(out / f"{run['name']}.weights.h5"))
    best.unlink(missing_ok=True)
    accs = [float(a) for a in history.history["val_accuracy"]]
    keras.mixed_precision.set_global_policy("float32")
    return {
        "name": run["name"], "model": run["model"], "scope": run.get("scope", "gpu"), "seed": cfg.seed,
        "set": run.get("set") or {}, "teacher": run.get("teacher"), "arch": arch, "config": dataclasses.asdict(cfg),
        "params_total": int(model.count_params()), "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"],
        "best_epoch": int(np.argmax(accs)) + 1, "epochs": cfg.epochs, "epochs_run": len(accs), "val_accuracy_per_epoch": accs,
        "epoch_seconds": clock.seconds, "stopped_by_deadline": clock.stopped,
        "weight_average": ({"epochs": [e + 1 for e in averaging.averaged_epochs], "applied": averaging.applied,
                            "chosen": averaging.applied and int(np.argmax(accs)) + 1 == len(accs),
                            "last_epoch_raw": averaging.last_epoch_raw}
                           if averaging else None),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items() if k != "learning_rate"},
        "seconds": round(seconds, 1), "images_per_second": round(len(y_tr) * len(accs) / seconds, 1),
        "hardware": hardware(), "keras": keras.__version__, "input_spec": spec.to_dict(),
    }


def main(argv: list[str] | None = None) -> int:
    import yaml

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("plan", type=Path, help="YAML: a list of runs (name, model, scope, seed, set, keep_weights)")
    ap.add_argument("--pack", type=Path, required=True, help="the data pack's stem (see write_pack)")
    ap.add_argument("--params", type=Path, default=Path("params.yaml"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--budget", type=float, default=None, help="seconds: a run that would not finish is skipped")
    ap.add_argument("--only", action="append", default=None, metavar="NAME", help="train only these runs of the plan")
    ap.add_argument("--time-box", type=float, default=None, metavar="S",
                    help="seconds per run: probe the speed, then train the planned epochs that fit")
    ap.add_argument("--probe-epochs", type=int, default=3, help="epochs the time-box probe times (>= 2)")
    ap.add_argument("--epoch-step", type=int, default=1, help="time-boxed epochs: a multiple of this")
    ap.add_argument("--deadline", type=float, default=None, metavar="S",
                    help="seconds from start: a fit whose next epoch would end later stops there")
    args = ap.parse_args(argv)
    params = yaml.safe_load(args.params.read_text())
    plan = yaml.safe_load(args.plan.read_text())
    if not isinstance(plan, list) or not all(isinstance(r, dict) and "name" in r and "model" in r for r in plan):
        raise SystemExit(f"{args.plan}: a plan is a YAML list of runs, each with a name and a model")
    if args.only:
        unknown = sorted(set(args.only) - {r["name"] for r in plan})
        if unknown:
            raise SystemExit(f"--only: {unknown} not in {args.plan}")
        plan = [r for r in plan if r["name"] in args.only]
    if args.probe_epochs < 2:
        raise SystemExit("--probe-epochs: at least 2 (the first epoch is compile time)")
    data = read_pack(args.pack)
    args.out.mkdir(parents=True, exist_ok=True)
    results, started, per_epoch = [], time.time(), {}
    for run in plan:
        cfg, arch = config_for(params, run["model"], run.get("scope", "gpu"), int(run.get("seed", params["seed"])),
                               run.get("dataset", "fer2013"), run.get("set") or {})
        key = (run["model"], repr(sorted(arch.items())), cfg.batch_size)
        guess = per_epoch.get(key, 0) * cfg.epochs + 30
        if args.budget and time.time() - started + guess > args.budget:
            results.append({"name": run["name"], "skipped": f"would not finish in the {args.budget:.0f} s budget"})
            print(f"{run['name']}: skipped (budget)", flush=True)
            continue
        print(f"== {run['name']}", flush=True)
        deadline = started + args.deadline if args.deadline else None
        boxed = None
        if args.time_box:
            box_start = time.time()
            probe = {**run, "name": f"{run['name']}-probe", "keep_weights": False,
                     "set": {**(run.get("set") or {}), "epochs": args.probe_epochs, "early_stopping_patience": None,
                             "swa_epochs": None}}
            timed = train_one(probe, params, data, args.out, deadline)["epoch_seconds"]
            fit = epochs_within(args.time_box - (time.time() - box_start), timed, cfg.epochs, step=args.epoch_step)
            boxed = {"planned_epochs": cfg.epochs, "probe_epoch_seconds": timed, "time_box_s": args.time_box}
            print(f"{run['name']}: probe epochs {timed} s -> {fit} of {cfg.epochs} planned epochs", flush=True)
            run = {**run, "set": {**(run.get("set") or {}), "epochs": fit}}
        result = train_one(run, params, data, args.out, deadline)
        if boxed:
            result["time_box"] = boxed
        per_epoch[key] = result["seconds"] / result["epochs_run"]
        results.append(result)
        print(f"{run['name']}: val accuracy {result['val_accuracy']:.4f} (best epoch {result['best_epoch']}), "
              f"{result['seconds']:.0f} s, {result['images_per_second']:.0f} img/s", flush=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
