"""Which class a face drifts to as it gets small.

The webcam video's face (49 px median, soft and compressed) is called "sad", "angry" or
"fear" by the combined CNN, never neutral. Is that the face or how few pixels it has? Two measurements, the same shrink
the evaluate stage's "accuracy at 16 / 24 / 32 px" uses (area down, linear back up):

- labelled: each dataset's validation faces at their stored size, then shrunk to 32, 24
  and 16 px: accuracy, neutral recall, and the share of neutral faces called "sad";
- unlabelled: the close-up video's face (300 px; most models call it neutral at its own
  size) cut out as the real-time path cuts it, then shrunk the same way: the share of its
  frames called each class.

Only validation faces are read.

    python benchmarks/small_faces.py --model models/combined/cnn-plain/model.keras --dataset fer2013
    python benchmarks/small_faces.py --recipe-run runs/recipe/cpu-downscale --dataset fer2013 --dataset affectnet

Writes reports/benchmarks/small_faces.json (or --out) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _common import ROOT, save  # noqa: E402

SIDES = (32, 24, 16)
VIDEO_SIDE = 96          # the close-up crops are brought to one size before shrinking
EVERY = 3                # every third face-frame of the close-up video (90 of 270)


def at_sides(images: np.ndarray) -> dict[str, np.ndarray]:
    """{"native": images, "32": shrunk to 32 px and back, ...}."""
    from emorec.evaluation.calibration import shrunk

    return {"native": images, **{str(s): shrunk(images, s) for s in SIDES}}


def as_rgb(images: np.ndarray) -> list[np.ndarray]:
    """Stored faces (N, H, W, 1 or 3) as the uint8 RGB crops a classifier takes."""
    return [np.repeat(im, 3, axis=-1) if im.shape[-1] == 1 else im for im in images]


def labelled(classifier, views: dict[str, np.ndarray], labels: np.ndarray, data_classes) -> dict:
    """Per size (`views`: at_sides of the faces, shrunk once for every model): accuracy over
    the faces whose class the model knows, neutral recall, and the share of neutral faces
    (and of all faces) called sad."""
    model_classes = list(classifier.classes)
    truth = np.array([model_classes.index(data_classes[k]) if data_classes[k] in model_classes else -1
                      for k in labels])
    keep = truth >= 0
    t = truth[keep]
    neutral, sad = model_classes.index("neutral"), model_classes.index("sad")
    out = {}
    for side, faces in views.items():
        predicted = classifier.predict_faces(as_rgb(faces[keep])).argmax(1)
        out[side] = {"n": int(keep.sum()), "accuracy": round(float((predicted == t).mean()), 4),
                     "neutral_recall": round(float((predicted[t == neutral] == neutral).mean()), 4),
                     "neutral_called_sad": round(float((predicted[t == neutral] == sad).mean()), 4),
                     "called_sad": round(float((predicted == sad).mean()), 4)}
    return out


def video_crops(recognizer, path: Path) -> np.ndarray:
    """The video's face crops as the real-time path cuts them, every EVERY-th, at VIDEO_SIDE px."""
    from real_faces import video_frames

    crops = []
    for frame in video_frames(path):
        found, _ = recognizer.crops(frame, recognizer.detect(frame))
        crops += [cv2.resize(c, (VIDEO_SIDE, VIDEO_SIDE), interpolation=cv2.INTER_AREA) for c in found]
    return np.stack(crops[::EVERY]) if crops else np.zeros((0, VIDEO_SIDE, VIDEO_SIDE, 3), np.uint8)


def unlabelled(classifier, views: dict[str, np.ndarray]) -> dict:
    """Per size (`views`: at_sides of the crops): the share of the crops called each class."""
    out = {}
    for side, faces in views.items():
        called = Counter(classifier.classes[k] for k in classifier.predict_faces(list(faces)).argmax(1))
        out[side] = {"n": len(faces), **{c: round(called[c] / len(faces), 4) for c in classifier.classes}}
    return out


def markdown(rows: list[dict]) -> str:
    sides = ["native", *map(str, SIDES)]
    lines = ["| model | faces | " + " | ".join(f"{s}: acc / neutral recall / neutral called sad" for s in sides) + " |",
             "|---|---|" + "---|" * len(sides)]
    for r in rows:
        for dataset, per in r["validation"].items():
            cells = [f"{per[s]['accuracy']:.3f} / {per[s]['neutral_recall']:.2f} / {per[s]['neutral_called_sad']:.2f}"
                     for s in sides]
            lines.append(f"| {r['model']} | {dataset} validation ({per['native']['n']}) | " + " | ".join(cells) + " |")
        if "closeup_video" in r:
            per = r["closeup_video"]
            cells = [f"neutral {per[s]['neutral']:.2f}, sad {per[s]['sad']:.2f}" for s in sides]
            lines.append(f"| {r['model']} | close-up video ({per['native']['n']} frames) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from real_faces import CLOSEUP, add_model_args, model_targets

    from emorec.config import load_params
    from emorec.data import prepared
    from emorec.recognizer import EmotionRecognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(ap)
    ap.add_argument("--dataset", action="append", default=None,
                    help="prepared dataset whose validation faces are shrunk (default: fer2013)")
    ap.add_argument("--out", type=Path, default=None, help="default: reports/benchmarks/small_faces.json")
    args = ap.parse_args(argv)
    data = {}
    for name in args.dataset or ["fer2013"]:
        folder = ROOT / "data" / "prepared" / name
        if reason := prepared.missing_reason(folder):
            raise SystemExit(f"--dataset {name}: {folder}: {reason}")
        images, labels, classes = prepared.load_part(folder, "val")
        data[name] = (at_sides(images), labels, classes)          # shrunk once, for every model
    params = load_params(ROOT / "params.yaml")
    rows, closeup = [], None
    with tempfile.TemporaryDirectory() as work:
        for name, model in model_targets(args, Path(work)):
            recognizer = EmotionRecognizer.from_params(params, ROOT, model=model)
            row = {"model": name, "validation": {d: labelled(recognizer.classifier, *v) for d, v in data.items()}}
            if CLOSEUP.is_file():    # the crops depend on the detector and margin, not the model: cut once
                closeup = closeup if closeup is not None else at_sides(video_crops(recognizer, CLOSEUP))
                row["closeup_video"] = unlabelled(recognizer.classifier, closeup)
            print(f"{name}: " + "; ".join(f"{d} neutral called sad {v['native']['neutral_called_sad']} -> "
                                          f"{v['16']['neutral_called_sad']} at 16 px" for d, v in row["validation"].items()),
                  flush=True)
            rows.append(row)
    save("small_faces", {"sides": ["native", *SIDES], "closeup_every": EVERY, "rows": rows}, args.out)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
