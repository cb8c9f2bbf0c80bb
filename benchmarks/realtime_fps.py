"""End-to-end frames per second of `emorec infer` per detector, with per-stage latency.

Runs the real loop (decode, detect, preprocess, classify in one batch per frame, draw,
encode the annotated video) on a video, once per detector, and prints one row each.
The classifier is the champion from the MLflow registry unless --model names a file
(.keras, or an .onnx / .tflite export with preprocessing.json beside it).

    python benchmarks/realtime_fps.py [--video PATH] [--model PATH] [--detectors yunet haar ...]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # for the retina-face backend


def main() -> None:
    from emorec import detectors, realtime, tracking
    from emorec.config import load_params, project_root
    from emorec.errors import EmorecError

    root = project_root()
    params = load_params(root / "params.yaml")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=params["infer"]["source"])
    parser.add_argument("--model", default=params["infer"]["model"])
    parser.add_argument("--detectors", nargs="*", default=list(params["detectors"]))
    parser.add_argument("--detect-every", type=int, default=1)
    parser.add_argument("--max-frames", type=int, default=None)
    args = parser.parse_args()
    video = Path(args.video) if Path(args.video).is_absolute() else root / args.video
    if args.model.startswith("models:/"):
        tracking.configure(root, params["mlflow"]["experiment"])
    classifier = realtime.Classifier(args.model, root)
    stages = ("decode", "detect", "preprocess", "classify", "draw", "encode")
    print(f"video {video.name}, model {args.model}, {os.cpu_count()} CPU cores, detect every "
          f"{args.detect_every} frame(s); latency in ms per frame")
    print(f"{'detector':<22}{'FPS':>7}" + "".join(f"{s:>11}" for s in stages) + f"{'faces':>7}")
    for name in args.detectors:
        try:
            det = detectors.create(name, params["detectors"].get(name), root)
        except EmorecError as exc:
            print(f"{name:<22} not run: {exc}")
            continue
        cfg = realtime.InferConfig(**{**{k: v for k, v in params["infer"].items()
                                         if k in realtime.InferConfig.__dataclass_fields__},
                                      "detect_every": args.detect_every, "max_frames": args.max_frames,
                                      "show": False})
        with tempfile.TemporaryDirectory() as out:
            s = realtime.run(realtime.open_source(str(video)), det, classifier, cfg, Path(out), progress=False)
        print(f"{name:<22}{s['fps']:>7.1f}" + "".join(f"{s['ms_per_frame'].get(k, 0):>11.2f}" for k in stages)
              + f"{s['faces_classified']:>7}")


if __name__ == "__main__":
    main()
