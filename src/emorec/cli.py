"""`emorec` command line: the pipeline stages, plus listings of models and datasets."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
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
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's and absl's start-up logs (hidden by default)")
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
                       ("distill", "train one student towards the seeds study's ensemble (params: distill)"),
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
    p.add_argument("--min-face", type=int, help="smaller faces (pixels, short side) are not classified")
    p.add_argument("--out", help="output folder (default: infer.out_dir)")
    p.add_argument("--detect-every", type=int, help="run the detector every N frames, track in between")
    p.add_argument("--ema", type=float, help="smoothing of class probabilities per track, 0 = none")
    p.add_argument("--margin", type=float, help="crop margin around each face box, fraction of its size")
    p.add_argument("--align", action="store_true", default=None, help="level the eyes using 5-point landmarks")
    p.add_argument("--max-frames", type=int, help="stop after N frames")
    p.add_argument("--tta", choices=["flip", "ten"], help="average test-time views of each face (slower; "
                   "reports/benchmarks.md gives its FPS and accuracy)")
    p.add_argument("--show", action="store_true", default=None, help="live window (only when a display exists)")
    p.add_argument("--full-frames", action="store_false", default=None, dest="shrink_frames",
                   help="search video frames at full size (slower; by default they are shrunk until "
                        "--min-face faces are the smallest the detector finds: infer.shrink_frames)")
    p = sub.add_parser("grid", help="list the runs of a profile; --write puts them in grid.yaml for dvc.yaml",
                       description="The runs a profile trains (grid.profile in params.yaml, or --profile). "
                                   "`--write` regenerates grid.yaml, which dvc.yaml iterates over; `--json` "
                                   "prints them for a CI job matrix.")
    p.add_argument("--profile", choices=grid.PROFILES, help="default: grid.profile in params.yaml")
    p.add_argument("--write", action="store_true", help="write grid.yaml (what `dvc repro` trains)")
    p.add_argument("--json", action="store_true", help="print a JSON list of {name, dataset, model, balance}")
    p.add_argument("-S", "--set-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a params override, as `dvc exp run -S` takes it (repeatable)")
    p = sub.add_parser("quickstart", help="train a small model on a FER2013 subset and run it on a photo "
                       "and a video, in minutes, into a scratch folder",
                       description="A first run in about 4 minutes on 2 CPU cores: a slim CNN trained on a "
                                   "capped FER2013 subset, scored on its test faces, then run on a photo and "
                                   "a video. Writes only under --out (its own MLflow store); the committed "
                                   "results are never touched.")
    p.add_argument("--out", help="scratch folder (default: runs/quickstart in the project)")
    p.add_argument("--per-class", type=int, default=600, help="faces per class and split (default 600)")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    p.add_argument("--photo", help="a photo to run on (default: a WIDER FACE photo in ../shared)")
    p.add_argument("--video", help="a video to run on (default: the webcam video in ../shared)")
    p = sub.add_parser("serve", help="HTTP service: POST an image, get faces and emotions (FastAPI)",
                       description="Serves the model over HTTP on 127.0.0.1 unless --host says otherwise: "
                                   "POST /v1/predict, /v1/predict-faces; GET /health, /ready, /metrics, /docs. "
                                   "A registry alias is re-read every --check-seconds, so promotion or rollback "
                                   "switches the answering version without a restart.")
    p.add_argument("--model", help="models:/emorec-<dataset>@<alias> (default: infer.model) or a model file")
    p.add_argument("--detector", choices=DETECTORS.available())
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--check-seconds", type=float, default=10.0, help="how often the alias is looked up")
    p.add_argument("--max-body-mb", type=float, default=10.0, help="larger bodies get 413")
    p.add_argument("--read-timeout", type=float, default=15.0,
                   help="seconds an upload may stall between chunks before it gets 408")
    p = sub.add_parser("team-server", help="one MLflow server for a team: PostgreSQL store, proxied artifacts",
                       description="Starts PostgreSQL (a cluster under --data, created on first start) on "
                                   "127.0.0.1:--pg-port and `mlflow server` with it as backend store, artifacts "
                                   "proxied from --data/artifacts, on --host:--port with --allowed-hosts. "
                                   "Workers set MLFLOW_TRACKING_URI=http://HOST:PORT. Ctrl-C stops both.")
    p.add_argument("--data", default="runs/team-server", help="folder for the database, artifacts and logs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--pg-port", type=int, default=5433)
    p.add_argument("--allowed-hosts", help="Host headers the server accepts (default: HOST[:PORT], and "
                   "localhost / 127.0.0.1 when bound to loopback)")
    sub.add_parser("models", help="list the registered model architectures")
    sub.add_parser("datasets", help="list the dataset adapters")
    return parser


def _registry_command(args) -> None:
    from emorec.config import load_params, project_root
    from emorec.experiments import registry, tracking

    root, params = project_root(), load_params()
    known = sorted(set(params.get("grid", {}).get("datasets", [])) | set(params.get("fetch", {})))
    if args.dataset not in known:
        raise EmorecError(f"--dataset {args.dataset!r} is not a dataset of this project; known: {', '.join(known)}")
    if args.action == "promote" and not str(args.version).isdigit():
        raise EmorecError(f"VERSION must be a version number (see `emorec registry list`), got {args.version!r}")
    tracking.configure(root, params["mlflow"]["experiment"])
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
            registry.promote(name, args.version, "promoted by hand (emorec registry promote)")
        print(f"{name}: v{args.version} is now the champion")
    else:
        with registry.registry_lock(registry.lock_file_for(root)):
            version = registry.rollback(name)
        print(f"{name}: champion rolled back to v{version}")


def _serve_command(args) -> None:
    import uvicorn

    from emorec.config import load_params, project_root, resolve_model
    from emorec.recognizer import EmotionRecognizer
    from emorec.serving.app import ModelSource, create_app

    root, params = project_root(), load_params()
    model = _here(args.model) or resolve_model(str(params["infer"]["model"]), root)
    if not model.startswith(("models:/", "runs:/")) and not os.path.isfile(model):
        raise EmorecError(f"--model {model} not found")
    if args.check_seconds <= 0 or args.max_body_mb <= 0 or args.read_timeout <= 0 or not 0 < args.port < 65536:
        raise EmorecError("--check-seconds, --max-body-mb and --read-timeout must be positive, --port in 1..65535")
    detector = args.detector or params["infer"]["detector"]
    source = ModelSource(model, lambda uri: EmotionRecognizer.from_params(params, root, model=uri,
                                                                          detector=detector),
                         args.check_seconds)
    source.get()   # load before accepting requests; a bad model fails here with its message
    app = create_app(source, int(args.max_body_mb * (1 << 20)), read_timeout=args.read_timeout)
    print(f"serving {model} v{source.current[1]} on http://{args.host}:{args.port} (docs: /docs)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


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


INFER_FLAGS = {"detect_every": "--detect-every", "ema": "--ema", "margin": "--margin",
               "max_frames": "--max-frames", "model": "--model", "detector": "--detector", "out": "--out",
               "min_face": "--min-face", "tta": "--tta"}
QUIET_COMMANDS = {"train", "evaluate", "infer", "register", "export", "crossval", "seeds", "distill",
                  "cross_dataset", "explain", "detectors", "quickstart", "serve"}


def _here(path: str | None) -> str | None:
    """A path the user typed, relative to where they stand (not the project root)."""
    if path is None or path.isdigit() or path.startswith(("models:/", "runs:/")):
        return path
    return os.path.abspath(os.path.expanduser(path))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("infer", "quickstart"):
        # retina-face builds its model with tf.keras; this must precede the first TensorFlow import
        os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from emorec import console

    if args.command in QUIET_COMMANDS and not args.verbose:
        if args.command in ("infer", "quickstart"):   # options are checked first, TF loads later
            os.environ[console.QUIET_VAR] = "1"
        else:
            console.quiet_tensorflow()
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
        elif args.command in ("report", "crossval", "seeds", "distill", "cross_dataset", "explain"):
            stage(args.command)()
        elif args.command == "infer":
            typed = {k for k in INFER_FLAGS if getattr(args, k, None) is not None}
            stage("infer")(_here(args.source), _here(args.model), args.detector, _here(args.out), overrides={
                "detect_every": args.detect_every, "ema": args.ema, "margin": args.margin,
                "align": args.align, "max_frames": args.max_frames, "show": args.show,
                "min_face": args.min_face, "tta": args.tta, "shrink_frames": args.shrink_frames},
                flags={k: v for k, v in INFER_FLAGS.items() if k in typed})
        elif args.command in ("register", "export"):
            stage(args.command)(args.dataset)
        elif args.command == "grid":
            _grid_command(args)
        elif args.command == "team-server":
            from emorec.experiments.team_server import TeamServer, serve_forever

            if not (0 < args.port < 65536 and 0 < args.pg_port < 65536) or args.port == args.pg_port:
                raise EmorecError("--port and --pg-port must be two different ports in 1..65535")
            serve_forever(TeamServer(Path(_here(args.data)), args.host, args.port, args.pg_port, args.allowed_hosts))
        elif args.command == "serve":
            _serve_command(args)
        elif args.command == "quickstart":
            from emorec import quickstart
            from emorec.config import project_root

            console.quiet_if_asked()
            root = project_root()
            quickstart.run(root, Path(_here(args.out) or root / "runs" / "quickstart"), args.per_class, args.epochs,
                           _here(args.photo), _here(args.video))
        elif args.command == "registry":
            _registry_command(args)
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        if type(exc).__name__ != "MlflowException":
            raise
        print(f"error: MLflow: {str(exc).splitlines()[0][:500]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
