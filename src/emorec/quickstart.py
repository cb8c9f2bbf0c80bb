"""`emorec quickstart`: a newcomer's first five minutes, without the ~100-minute pipeline.

Trains a slim version of the paper's CNN on a capped FER2013 subset (official splits) for a few epochs,
scores it on that subset's test faces, then runs it on a photo and a video. Everything
goes under one scratch folder (default `runs/quickstart/`, git-ignored) with its own
MLflow store, so the committed results in `reports/`, `metrics/` and `mlflow.db` are
never touched. The figures it prints are a smoke check, not results."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from emorec.config import load_params, section
from emorec.errors import EmorecError

DEFAULT_PHOTO = "../shared/media/wider_val/images/11--Meeting/11_Meeting_Meeting_11_Meeting_Meeting_11_71.jpg"
DEFAULT_VIDEO = "../shared/media/videos/webcam_640x480_one_face.mp4"


# A slimmer CNN than the paper's (1.8 M parameters): ~3x its speed on 2 cores, and it learns
# something in a minute. The paper's CNN is what `dvc repro` trains.
QUICK_CNN = {"optimizer": "adam", "learning_rate": 0.001,
             "arch": {"filters": [16, 32, 64, 128], "convs_per_block": 1, "dense_units": 128,
                      "conv_dropout": 0.1, "dense_dropout": 0.3}}


def run(root: Path, out: Path, per_class: int = 600, epochs: int = 10, photo: str | None = None,
        video: str | None = None, max_frames: int = 120) -> dict:
    from emorec.data.adapters import fetch
    from emorec.evaluation import metrics
    from emorec.experiments import tracking
    from emorec.models.loading import load_model
    from emorec.stages import infer
    from emorec.training import fit

    if per_class < 20 or epochs < 1:
        raise EmorecError("--per-class must be at least 20 and --epochs at least 1")
    params = load_params(root / "params.yaml")
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    if (out / "model").exists() and not (out / "model" / "run.json").exists():
        raise EmorecError(f"{out / 'model'} exists and is not a quickstart model; choose another --out")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(out / 'mlflow.db').as_posix()}"
    logging.getLogger("mlflow").setLevel(logging.WARNING)   # no schema-migration chatter
    import keras

    keras.utils.disable_interactive_logging()   # MLflow's signature probe prints progress bars

    cfg = {**section(params, "fetch", "fer2013"), "max_per_class": per_class, "kaggle_download": False}
    print(f"1/4 FER2013: up to {per_class} faces per class and split ...", flush=True)
    data = fetch("fer2013", cfg, root, out / "downloads", params.get("limits")).cache
    parts = {s: data.subset(data.split == s) for s in ("train", "val", "test")}
    model_params = {**section(params, "models", "cnn"), **QUICK_CNN}
    train_cfg = fit.TrainConfig.from_params({**section(params, "train"), "epochs": epochs}, model_params,
                                            int(section(params, "seed")))
    train_cfg.verbose = 0
    print(f"2/4 training a slim CNN: {len(parts['train'])} faces, {epochs} epochs ...", flush=True)
    experiment = tracking.configure(out, "emorec-quickstart")
    result = fit.train(
        model_name="cnn", arch=dict(model_params.get("arch", {})), cfg=train_cfg,
        train_images=parts["train"].images, train_labels=parts["train"].labels,
        val_images=parts["val"].images, val_labels=parts["val"].labels, classes=tuple(data.classes),
        out_dir=out / "model", curves_dir=out / "curves", run_name="quickstart-cnn",
        experiment_id=experiment, log_params={"per_class": per_class, "epochs": epochs},
        tags={"quickstart": "true", "hardware": tracking.hardware()})
    model, meta = load_model(out / "model")
    from emorec.data.preprocess import InputSpec, to_model_input

    spec = InputSpec.from_dict(meta["input_spec"])
    pred = model.predict(to_model_input(parts["test"].images, spec), batch_size=256, verbose=0).argmax(1)
    score = metrics.compute_metrics(parts["test"].labels, pred, tuple(data.classes))
    print(f"   test accuracy {score['accuracy']:.3f} on {score['n']} faces (a smoke check: "
          f"{per_class}/class, {epochs} epochs; the pipeline's figures are in reports/results.md)")
    model_file = str(out / "model" / "model.keras")
    print("3/4 a photo ...", flush=True)
    photo_summary = infer.run(photo or DEFAULT_PHOTO, model_file, None, str(out / "photo"), params=params,
                              root=root, progress=False)
    print("4/4 a video ...", flush=True)
    video_summary = infer.run(video or DEFAULT_VIDEO, model_file, None, str(out / "video"), params=params,
                              root=root, overrides={"max_frames": max_frames, "show": False}, progress=False)
    minutes = (time.perf_counter() - start) / 60
    print(f"done in {minutes:.1f} min -> {out} (model/, curves/, photo/, video/, mlflow.db)")
    return {"minutes": minutes, "test_accuracy": score["accuracy"], "photo": photo_summary,
            "video": video_summary, "train_seconds": result.seconds}
