"""Training throughput of emorec's training loop against a plain `model.fit` on in-memory
numpy arrays: same model, batch size, images and epochs, each in its own process.

Our loop adds what a real run needs: the on-the-fly augmentation PyDataset (when
`train.online_augmentation` is set), the best-checkpoint, CSV and MLflow callbacks, and a
validation pass per epoch. The plain side runs the same validation pass.

    python benchmarks/input_pipeline.py [--model cnn] [--images 8192] [--epochs 2] [--repeats 2]

Rows go to reports/benchmarks/input_pipeline.json (`benchmarks/summarize.py` reports them).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _data(n: int, val: int):
    from emorec import files

    prepared = ROOT / "data" / "prepared" / "fer2013"
    if (prepared / "train.npz").exists():
        tr, va = files.load_npz(prepared / "train.npz"), files.load_npz(prepared / "val.npz")
        return (tr["images"][:n], tr["labels"][:n], va["images"][:val], va["labels"][:val],
                tuple(str(c) for c in tr["classes"]), "FER2013 prepared train/val")
    rng = np.random.default_rng(0)
    return (rng.integers(0, 255, (n, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, n),
            rng.integers(0, 255, (val, 48, 48, 1), dtype=np.uint8), rng.integers(0, 7, val),
            tuple("abcdefg"), "random images (no prepared FER2013)")


def side(which: str, model_name: str, n: int, epochs: int, online: bool) -> dict:
    import keras

    from emorec.config import load_params
    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.training import fit as training

    params = load_params(ROOT / "params.yaml")
    x, y, xv, yv, classes, source = _data(n, 1024)
    cfg = training.TrainConfig.from_params(params["train"], params["models"][model_name], 1, "fer2013",
                                           params["grid"].get("profile", "full"), params.get("train_overrides"))
    cfg.epochs, cfg.verbose, cfg.max_train_images = epochs, 0, None
    if not online:
        cfg.online_augmentation = None
    arch = dict(params["models"][model_name].get("arch") or {})
    if which == "plain":
        keras.utils.set_random_seed(1)
        from emorec import models

        spec = InputSpec(cfg.input_size or 48, models.input_channels(model_name, 1), classes)
        xs, xvs = to_model_input(x, spec), to_model_input(xv, spec)
        model = models.build(model_name, (spec.size, spec.size, spec.channels), len(classes), **arch)
        training.compile_for(model, cfg, len(xs))
        start = time.perf_counter()
        model.fit(xs, y, validation_data=(xvs, yv), batch_size=cfg.batch_size, epochs=epochs, verbose=0)
        seconds = time.perf_counter() - start
    else:
        import mlflow

        with tempfile.TemporaryDirectory() as tmp:
            mlflow.set_tracking_uri(f"sqlite:///{tmp}/mlflow.db")
            exp = mlflow.create_experiment("bench", artifact_location=f"{tmp}/artifacts")
            result = training.train(model_name=model_name, arch=arch, cfg=cfg, train_images=x, train_labels=y,
                                    val_images=xv, val_labels=yv, classes=classes, out_dir=Path(tmp) / "m",
                                    curves_dir=Path(tmp) / "c", run_name="bench", experiment_id=exp,
                                    log_params={}, tags={})
            seconds = result.seconds   # the fit itself, as on the plain side
    return {"side": which, "images_per_second": n * epochs / seconds, "seconds": seconds, "data": source,
            "batch_size": cfg.batch_size}


SIDES = (("plain", "0", "plain model.fit on in-memory numpy arrays"),
         ("emorec", "0", "emorec training.train, online augmentation off"),
         ("emorec", "1", "emorec training.train as configured (params.yaml)"))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_side":
        which, model, n, epochs, online = sys.argv[2:]
        print(json.dumps(side(which, model, int(n), int(epochs), online == "1")))
        return
    import _common

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--images", type=int, default=16384)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the three sides; each side's median counts")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    runs: dict[int, list[dict]] = {i: [] for i in range(len(SIDES))}   # every run per side; the median counts
    for round_ in range(args.repeats):
        for i, (which, online, name) in enumerate(SIDES):
            out = subprocess.run([sys.executable, __file__, "_side", which, args.model, str(args.images),
                                  str(args.epochs), online], capture_output=True, text=True, cwd=ROOT)
            lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if not lines:
                raise SystemExit(out.stderr[-2000:])
            r = {**json.loads(lines[-1]), "name": name, "online": online == "1", "default": i == 2}
            print(f"round {round_ + 1}: {name}: {r['images_per_second']:.0f} img/s", file=sys.stderr)
            runs[i].append(r)
    rows = []
    for got in runs.values():
        speeds = [r["images_per_second"] for r in got]
        rows.append({**sorted(got, key=lambda r: r["images_per_second"])[len(got) // 2], "runs": speeds})
    batch = rows[0]["batch_size"]
    base = rows[0]["images_per_second"]
    print(f"model {args.model}, batch {batch}, {args.images} images x {args.epochs} epochs, {rows[0]['data']}, "
          f"{os.cpu_count()} CPU cores, median of {args.repeats}")
    print(f"{'loop':<52}{'img/s':>8}{'vs plain fit':>14}")
    for r in rows:
        print(f"{r['name']:<52}{r['images_per_second']:>8.0f}{r['images_per_second'] / base:>13.3f}x")
    path = _common.save("input_pipeline", {"model": args.model, "batch_size": batch, "images": args.images,
                                           "epochs": args.epochs, "repeats": args.repeats,
                                           "data": rows[0]["data"], "rows": rows}, args.json)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
