"""`emorec` command line: the pipeline stages, plus listings of models and datasets."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emorec import grid  # noqa: E402
from emorec.errors import EmorecError  # noqa: E402
from emorec.inference.detectors import DETECTORS  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emorec",
        description="Facial emotion recognition pipeline (DVC stages, MLflow tracking). "
                    "Each subcommand runs one pipeline stage with the settings in params.yaml; "
                    "`dvc repro` runs them all in order.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("fetch", help="find a dataset, verify it, write its normalized cache")
    p.add_argument("dataset")
    p = sub.add_parser("validate", help="Great Expectations checks and duplicate report")
    p.add_argument("dataset")
    p = sub.add_parser("prepare", help="split, drop leaking duplicates, balance by augmentation")
    p.add_argument("dataset")
    p = sub.add_parser("pca", help="per-channel PCA reconstruction of a prepared dataset")
    p.add_argument("dataset")
    for name, text in (("train", "train one model and log it to MLflow"),
                       ("evaluate", "evaluate a trained model on the test split")):
        p = sub.add_parser(name, help=text)
        p.add_argument("dataset")
        p.add_argument("model")
        p.add_argument("balance", choices=grid.BALANCE_MODES)
    sub.add_parser("report", help="write reports/results.md beside the paper's numbers")
    for name, text in (("crossval", "stratified k-fold cross-validation (params: crossval)"),
                       ("seeds", "re-train chosen grid cells with more seeds (params: seeds)"),
                       ("cross_dataset", "score grid models on another dataset's test split"),
                       ("explain", "Grad-CAM and feature maps for chosen grid models")):
        sub.add_parser(name, help=text)
    p = sub.add_parser("register", help="register the best run of a dataset; promote it if it wins")
    p.add_argument("dataset")
    p = sub.add_parser("export", help="export the champion to Keras, SavedModel, TFLite and ONNX")
    p.add_argument("dataset")
    reg = sub.add_parser("registry", help="list, promote or roll back registered models",
                         description="The MLflow registry holds one model per dataset, emorec-<dataset>; "
                                     "the real-time stage serves its `champion` alias.")
    reg_sub = reg.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("list", "versions with aliases, metrics and promotion notes"),
                         ("promote", "make VERSION the champion (by hand, no margin check)"),
                         ("rollback", "move champion back to the version it replaced")):
        a = reg_sub.add_parser(action, help=text)
        if action == "promote":
            a.add_argument("version")
        a.add_argument("--dataset", default="fer2013", help="which emorec-<dataset> model (default fer2013)")
    p = sub.add_parser(
        "infer", help="detect, track and classify faces in a video, webcam, image or folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Real-time emotion recognition. Every face of a frame is classified in one "
                    "batch; faces are tracked across frames (IoU matching) and each track's class "
                    "probabilities are smoothed (EMA) so labels do not flicker. Writes an annotated "
                    "video (box, emotion, confidence, track id, FPS), per-frame JSONL (frame, time, "
                    "track id, box, all class probabilities), summary.json and an emotion timeline "
                    "PNG per track. Defaults come from the infer: block of params.yaml.",
        epilog="examples:\n"
               "  emorec infer 0                                   # webcam 0, live window if a display exists\n"
               "  emorec infer clip.mp4 --out runs/clip            # a video file\n"
               "  emorec infer photos/ --detector retinaface-mobilenet\n"
               "  emorec infer clip.mp4 --model models/export/fer2013/model.onnx\n"
               "detectors: haar (bundled, no download), yunet, retinaface-mobilenet (ONNX),\n"
               "  retinaface (ResNet-50, the paper's; needs retinaface.h5, see README)")
    p.add_argument("source", nargs="?", help="camera index (0), video file, image, or folder of images "
                   "(default: infer.source)")
    p.add_argument("--model", help="models:/emorec-<dataset>@champion (default), a .keras file, or an "
                   ".onnx/.tflite export with preprocessing.json beside it")
    p.add_argument("--detector", choices=DETECTORS.available())
    p.add_argument("--out", help="output folder (default: infer.out_dir)")
    p.add_argument("--detect-every", type=int, help="run the detector every N frames, track in between")
    p.add_argument("--ema", type=float, help="smoothing of class probabilities per track, 0 = none")
    p.add_argument("--margin", type=float, help="crop margin around each face box, fraction of its size")
    p.add_argument("--align", action="store_true", default=None, help="level the eyes using 5-point landmarks")
    p.add_argument("--max-frames", type=int, help="stop after N frames")
    p.add_argument("--show", action="store_true", default=None, help="live window (only when a display exists)")
    p = sub.add_parser("grid", help="list the runs of a profile; --write puts them in grid.yaml for dvc.yaml",
                       description="The runs a profile trains (grid.profile in params.yaml, or --profile). "
                                   "`--write` regenerates grid.yaml, which dvc.yaml iterates over; `--json` "
                                   "prints them for a CI job matrix.")
    p.add_argument("--profile", choices=grid.PROFILES, help="default: grid.profile in params.yaml")
    p.add_argument("--write", action="store_true", help="write grid.yaml (what `dvc repro` trains)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {name, dataset, model, balance}")
    p.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a params override, as `dvc exp run -S` takes it (repeatable)")
    sub.add_parser("models", help="list the registered model architectures")
    sub.add_parser("datasets", help="list the dataset adapters")
    return parser


def _registry_command(args) -> None:
    from emorec.config import load_params, project_root
    from emorec.experiments import registry, tracking

    root = project_root()
    tracking.configure(root, load_params()["mlflow"]["experiment"])
    name = registry.model_name(args.dataset)
    if args.action == "list":
        rows = registry.list_versions(name)
        if not rows:
            print(f"{name}: no registered versions")
        for r in rows:
            print(f"{name} v{r['version']:<3} {','.join(r['aliases']) or '-':<11} "
                  f"val {r['metric'] or '?'} {r['val_score'][:6]:<6} test acc {r['test_accuracy'][:6]:<6} "
                  f"weights {r['weights'] or '?':<8} {r['note']}")
    elif args.action == "promote":
        with registry.registry_lock(registry.lock_file_for(root)):
            registry._client().get_model_version(name, args.version)
            registry.promote(name, args.version, "promoted by hand (emorec registry promote)")
        print(f"{name}: v{args.version} is now the champion")
    else:
        with registry.registry_lock(registry.lock_file_for(root)):
            version = registry.rollback(name)
        print(f"{name}: champion rolled back to v{version}")


def _grid_command(args) -> None:
    import json

    from emorec import runs
    from emorec.config import apply_overrides, load_params, project_root

    root, params = project_root(), apply_overrides(load_params(), args.set_param)
    if args.write:
        path = runs.write_grid_file(params, root, args.profile)
        print(f"wrote {path}")
    active, absent = runs.runs(params, root, args.profile)
    if args.json:
        print(json.dumps([{"name": r.name, "dataset": r.dataset, "model": r.model, "balance": r.balance}
                          for r in active]))
        return
    for r in active:
        print(r.name)
    for dataset, why in absent.items():
        print(f"# {dataset}: no runs, {why}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "infer":
        # retina-face builds its model with tf.keras; this must precede the first TensorFlow import
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import importlib

    def stage(name: str):
        return importlib.import_module(f"emorec.stages.{name}").run

    try:
        if args.command == "models":
            from emorec import models

            for name in models.available():
                print(f"{name}: {models.get(name).description}")
        elif args.command == "datasets":
            from emorec.data import adapters as datasets

            print("\n".join(datasets.available()))
        elif args.command in ("fetch", "validate", "prepare", "pca"):
            stage(args.command)(args.dataset)
        elif args.command in ("train", "evaluate"):
            stage(args.command)(args.dataset, args.model, args.balance)
        elif args.command in ("report", "crossval", "seeds", "cross_dataset", "explain"):
            stage(args.command)()
        elif args.command == "infer":
            stage("infer")(args.source, args.model, args.detector, args.out, overrides={
                "detect_every": args.detect_every, "ema": args.ema, "margin": args.margin,
                "align": args.align, "max_frames": args.max_frames, "show": args.show})
        elif args.command in ("register", "export"):
            stage(args.command)(args.dataset)
        elif args.command == "grid":
            _grid_command(args)
        elif args.command == "registry":
            _registry_command(args)
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
