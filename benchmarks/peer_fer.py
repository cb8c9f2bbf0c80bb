"""emorec against the `fer` package (PyPI) on the same machine, data and videos.

    python benchmarks/peer_fer.py accuracy [--model M]      # FER2013 PrivateTest crops
    python benchmarks/peer_fer.py fps [--model M ...]       # the three videos in ../shared
    python benchmarks/peer_fer.py all --out reports/benchmarks.md

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
    from emorec import io

    cache = ROOT / "data" / "cache" / "fer2013.npz"
    if not cache.exists():
        raise SystemExit(f"{cache} missing: run `dvc repro fetch@fer2013` first")
    d = io.load_npz(cache)
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
        from emorec import realtime, tracking
        from emorec.config import load_params

        if model.startswith("models:/"):
            tracking.configure(ROOT, load_params(ROOT / "params.yaml")["mlflow"]["experiment"])
        clf = realtime.Classifier(model, ROOT)
        if tuple(clf.classes) != classes:
            raise SystemExit(f"model classes {clf.classes} differ from FER2013's {classes}")
        rgb = [np.repeat(f, 3, axis=-1) for f in x]
        probs = np.concatenate([clf.predict_faces(rgb[i:i + 256]) for i in range(0, len(rgb), 256)])
    seconds = time.perf_counter() - start
    from emorec import evaluation

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
        return {"who": "decode only", "frames": n, "fps": n / (time.perf_counter() - start)}
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

    from emorec import detectors, realtime, tracking
    from emorec.config import load_params

    params = load_params(ROOT / "params.yaml")
    if model.startswith("models:/"):
        tracking.configure(ROOT, params["mlflow"]["experiment"])
    clf = realtime.Classifier(model, ROOT)
    det = detectors.create(detector, params["detectors"].get(detector), ROOT)
    cfg = realtime.InferConfig(**{**{k: v for k, v in params["infer"].items()
                                     if k in realtime.InferConfig.__dataclass_fields__},
                                  "max_frames": max_frames, "show": False})
    with tempfile.TemporaryDirectory() as out:
        s = realtime.run(realtime.open_source(video), det, clf, cfg, Path(out), progress=False)
    return {"who": "emorec", "detector": detector, "model": model, "frames": s["frames"],
            "faces": s["faces_classified"], "fps": s["fps"], "ms_per_frame": s["ms_per_frame"]}


# ----------------------------------------------------------------------------- orchestration
def _in_process(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "_side", *args], capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "TF_USE_LEGACY_KERAS": "1"})
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        return {"error": (out.stderr or out.stdout).strip().splitlines()[-1:] or ["failed"]}
    return json.loads(lines[-1])


def accuracy_table(model: str) -> tuple[list[dict], str]:
    rows = [_in_process(["accuracy", "fer", model]), _in_process(["accuracy", "emorec", model])]
    lines = ["| classifier | accuracy | macro-F1 | crops/s | " + " | ".join(FER_CLASSES) + " |",
             "|---|---|---|---|" + "---|" * len(FER_CLASSES)]
    for r in rows:
        if "error" in r:
            lines.append(f"| failed: {r['error'][0][:200]} |")
            continue
        lines.append(f"| {r['model']} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} | {r['crops_per_second']:.0f} | "
                     + " | ".join(f"{r['per_class_f1'][c]:.2f}" for c in FER_CLASSES) + " |")
    return rows, "\n".join(lines)


def fps_table(models: list[str], detectors: list[str], max_frames: int | None) -> tuple[list[dict], str]:
    stages = ("decode", "detect", "preprocess", "classify", "draw", "encode")
    rows = []
    lines = ["| video | pipeline | FPS | x fer | " + " | ".join(f"{s} ms" for s in stages) + " | faces |",
             "|---|---|---|---|" + "---|" * len(stages) + "---|"]
    for video in sorted(VIDEOS.glob("*.mp4")):
        mf = [] if max_frames is None else ["--max-frames", str(max_frames)]
        ceiling = _in_process(["fps", "decode", str(video), "-", "-", *mf])
        fer = _in_process(["fps", "fer", str(video), "-", "-", *mf])
        ours = [_in_process(["fps", "emorec", str(video), m, d, *mf]) for d in detectors for m in models]
        rows += [{"video": video.name, **r} for r in (ceiling, fer, *ours)]
        fer_fps = fer.get("fps")
        lines.append(f"| {video.name} | decode only (ceiling) | {ceiling.get('fps', 0):.1f} | | "
                     + " | " * len(stages) + " |")
        lines.append(f"| {video.name} | fer (haar + bundled classifier) | {fer.get('fps', 0):.1f} | 1.0 | "
                     + " | " * len(stages) + f" {fer.get('faces', '')} |")
        for r in ours:
            if "error" in r:
                lines.append(f"| {video.name} | failed: {r['error'][0][:150]} |")
                continue
            ratio = f"{r['fps'] / fer_fps:.1f}" if fer_fps else ""
            lines.append(f"| {video.name} | {r['detector']} + {Path(r['model']).name} | {r['fps']:.1f} | {ratio} | "
                         + " | ".join(f"{r['ms_per_frame'].get(s, 0):.2f}" for s in stages) + f" | {r['faces']} |")
    return rows, "\n".join(lines)


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["accuracy", "fps", "all"])
    parser.add_argument("--model", nargs="*", default=["models:/emorec-fer2013@champion"],
                        help="our classifier(s): models:/..., .keras, .onnx or .tflite")
    parser.add_argument("--detectors", nargs="*", default=["yunet"])
    parser.add_argument("--max-frames", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="also write the tables (markdown) here")
    parser.add_argument("--json", type=Path, default=None, help="also write the raw rows here")
    args = parser.parse_args()
    import platform

    header = (f"Measured {time.strftime('%Y-%m-%d %H:%M')} on {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} CPU cores, Python {platform.python_version()}; each side in its own process.")
    parts, raw = [header, ""], {}
    if args.what in ("accuracy", "all"):
        raw["accuracy"], table = accuracy_table(args.model[0])
        parts += ["## Accuracy on FER2013 PrivateTest (3,589 crops)", "", table, ""]
    if args.what in ("fps", "all"):
        raw["fps"], table = fps_table(args.model, args.detectors, args.max_frames)
        parts += ["## End-to-end FPS and per-stage latency", "", table, ""]
    text = "\n".join(parts)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
