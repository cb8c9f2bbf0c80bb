"""emorec against the `fer` package (PyPI) on the same machine, data and videos.

    python benchmarks/peer_fer.py accuracy [--model M ...]  # FER2013 PrivateTest crops
    python benchmarks/peer_fer.py fps [--model M ...] [--detectors D ...]   # the videos in ../shared
    python benchmarks/peer_fer.py all                       # both; rows to reports/benchmarks/peer_fer.json

`fer` is installed without its dependencies, because they would replace our OpenCV build
and pull in PyTorch for a detector it does not use by default:

    pip install --no-deps fer==25.10.3

Each measured side runs in its own fresh process, one after the other, so the noisy
machine treats both alike. fer's side is its own `FER().detect_emotions` (OpenCV Haar
cascade + its bundled FER2013 classifier) and, for accuracy, its own `_classify_emotions`
on its own preprocessing (64x64 grey, scaled to [-1, 1]).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "media" / "videos"
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


# ----------------------------------------------------------------------------- one side each
def private_test() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """FER2013's PrivateTest crops (official split 'test') from the fetch cache."""
    from emorec import files

    cache = ROOT / "data" / "cache" / "fer2013.npz"
    if not cache.exists():
        raise SystemExit(f"{cache} missing: run `dvc repro fetch@fer2013` first")
    d = files.load_npz(cache)
    keep = d["split"] == "test"
    return d["images"][keep], d["labels"][keep], tuple(str(c) for c in d["classes"])


def side_accuracy(who: str, model: str) -> dict:
    x, y, classes = private_test()
    start = time.perf_counter()
    if who == "fer":
        import cv2
        from fer.fer import FER

        faces = np.stack([cv2.resize(f.squeeze(), (64, 64)) for f in x]).astype("float32")
        faces = (faces / 255.0 - 0.5) * 2.0
        probs = np.asarray(FER()._classify_emotions(faces))
        order = [FER_CLASSES.index(c) for c in classes]   # fer's column order -> ours
        probs = probs[:, order]
    else:
        from emorec import EmotionRecognizer

        rec = EmotionRecognizer(model, "yunet", root=ROOT)   # the object users call
        if tuple(rec.classes) != classes:
            raise SystemExit(f"model classes {rec.classes} differ from FER2013's {classes}")
        rgb = [np.repeat(f, 3, axis=-1) for f in x]
        probs = np.concatenate([rec.classify(rgb[i:i + 256]) for i in range(0, len(rgb), 256)])
    seconds = time.perf_counter() - start
    from emorec.evaluation import metrics as evaluation

    m = evaluation.compute_metrics(y, probs.argmax(1), classes)
    return {"who": who, "model": "fer bundled classifier" if who == "fer" else model,
            "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"],
            "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()},
            "crops_per_second": len(x) / seconds}


def side_fps(who: str, video: str, model: str, detector: str, max_frames: int | None) -> dict:
    import cv2

    if who == "decode":
        cap = cv2.VideoCapture(video)
        n, start = 0, time.perf_counter()
        while max_frames is None or n < max_frames:
            ok, _ = cap.read()
            if not ok:
                break
            n += 1
        return {"who": "decode", "frames": n, "fps": n / (time.perf_counter() - start)}
    if who == "fer":
        from fer.fer import FER

        det = FER()
        cap = cv2.VideoCapture(video)
        n = faces = 0
        start = time.perf_counter()
        while max_frames is None or n < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            faces += len(det.detect_emotions(frame))
            n += 1
        return {"who": "fer", "detector": "haar (fer default)", "model": "fer bundled",
                "frames": n, "faces": faces, "fps": n / (time.perf_counter() - start)}
    import tempfile

    from emorec.stages import infer

    with tempfile.TemporaryDirectory() as out:   # the infer stage's own code path, params.yaml's settings
        s = infer.run(video, model, detector, out, root=ROOT, overrides={"max_frames": max_frames},
                                 progress=False)
    return {"who": "emorec", "detector": detector, "model": model, "frames": s["frames"],
            "faces": s["faces_classified"], "fps": s["fps"], "ms_per_frame": s["ms_per_frame"]}


# ----------------------------------------------------------------------------- orchestration
def _in_process(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "_side", *args], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": ((out.stderr or out.stdout).strip().splitlines() or ["failed"])[-1]}
    return json.loads(lines[-1])


def accuracy_rows(models: list[str]) -> list[dict]:
    rows = [_in_process(["accuracy", "fer", "-"])]
    for model in models:
        rows.append({"model": model, **_in_process(["accuracy", "emorec", model])})
        print(f"accuracy {model}: {rows[-1].get('accuracy', rows[-1].get('error'))}", file=sys.stderr)
    return rows


def fps_rows(videos: list[Path], models: list[str], detectors: list[str], extra_models: list[str],
             target: str, max_frames: int | None) -> list[dict]:
    """Per video: the decode-only ceiling, fer, then every detector x model; `extra_models`
    run with the first detector on the target video only (for the accuracy-vs-FPS plot)."""
    rows = []
    mf = [] if max_frames is None else ["--max-frames", str(max_frames)]
    for video in videos:
        runs = [("decode", "-", "-"), ("fer", "-", "-")] + [("emorec", m, d) for d in detectors for m in models]
        if video.name == target:
            runs += [("emorec", m, detectors[0]) for m in extra_models]
        for who, model, detector in runs:
            r = _in_process(["fps", who, str(video), model, detector, *mf])
            rows.append({"video": video.name, "who": who, "model": model, "detector": detector, **r})
            print(f"{video.name} {who} {detector} {model}: {r.get('fps', r.get('error'))}", file=sys.stderr)
    return rows


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_side":
        kind, who, *rest = sys.argv[2:]
        if kind == "accuracy":
            print(json.dumps(side_accuracy(who, rest[0])))
        else:
            video, model, detector, *extra = rest
            max_frames = int(extra[1]) if extra[:1] == ["--max-frames"] else None
            print(json.dumps(side_fps(who, video, model, detector, max_frames)))
        return
    import _common

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["accuracy", "fps", "all"])
    parser.add_argument("--model", nargs="*", default=["models:/emorec-fer2013@champion"],
                        help="our classifier(s): models:/..., .keras, .onnx or .tflite")
    parser.add_argument("--extra-models", nargs="*", default=[],
                        help="more classifiers, timed with the first detector on the target video only")
    parser.add_argument("--detectors", nargs="*", default=["yunet"])
    parser.add_argument("--target", default="webcam_640x480_one_face.mp4", help="the video the targets refer to")
    parser.add_argument("--videos", nargs="*", type=Path, default=sorted(VIDEOS.glob("*.mp4")))
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write the rows (default reports/benchmarks/peer_fer.json)")
    args = parser.parse_args()
    result = {"target_video": args.target}
    if args.what in ("accuracy", "all"):
        result["accuracy"] = accuracy_rows(args.model + args.extra_models)
    if args.what in ("fps", "all"):
        result["fps"] = fps_rows(args.videos, args.model, args.detectors, args.extra_models, args.target,
                                 args.max_frames)
    path = _common.save("peer_fer", result, args.json)
    print(f"wrote {path}; `python benchmarks/summarize.py` turns it into reports/benchmarks.md")


if __name__ == "__main__":
    main()
