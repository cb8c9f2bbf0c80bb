"""What does searching a shrunk frame cost? yunet's `smallest_face` against a full-size search.

With `infer.shrink_frames`, the real-time loop shrinks each frame until the smallest face it
classifies (`infer.min_face`) is as small as the detector still finds
(`detectors.<name>.smallest_face`): a 640x480 webcam frame is searched at 320x240, four
times fewer pixels. Three measurements per setting (full size, and shrunk for each
`--smallest` value):

1. WIDER FACE photos (`detector_eval`): recall of faces of at least `infer.min_face` px and
   false positives, and detector milliseconds per photo.
2. Labelled validation faces of FER2013 and AffectNet through the real-time path, at
   realistic sizes (`--face-px`, each face in the middle of a black 640x480 frame): faces found,
   the box's IoU with the full-size search's box, and the real-time model's accuracy and
   macro-F1 on the crops. Validation only: this chooses a setting.
3. End-to-end FPS of the real-time loop is `realtime_fps.py`'s, one row per setting:

    python benchmarks/detect_scale.py --limit 1500
    python benchmarks/realtime_fps.py --settings - shrink_frames=false

Writes reports/benchmarks/detect_scale.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import ROOT, save  # noqa: E402
from crop_margin import on_canvas  # noqa: E402

FRAME = (480, 640)   # a webcam frame: each labelled face is set in the middle of a black one


def in_frame(image: np.ndarray, face_px: int) -> np.ndarray:
    """A stored face enlarged to `face_px` (with the margin `on_canvas` gives it) in the
    middle of a black 640x480 frame, as BGR: the detector searches a whole frame, as live."""
    canvas = on_canvas(image, face_px)
    frame = np.zeros((*FRAME, 3), np.uint8)
    h, w = canvas.shape[:2]
    top, left = (FRAME[0] - h) // 2, (FRAME[1] - w) // 2
    frame[top:top + h, left:left + w] = canvas
    return frame


def with_smallest(params: dict, detector: str, smallest: int | None) -> dict:
    out = copy.deepcopy(params)
    out.setdefault("detectors", {}).setdefault(detector, {})["smallest_face"] = smallest
    return out


def wider_row(recognizer, params: dict, shrink: bool) -> dict:
    """The recognizer's search of a real-time frame (`shrink`) or of a photo, on the WIDER photos."""

    from emorec.evaluation import detectors as detector_eval
    from emorec.inference import detectors

    cfg = params["detector_eval"]
    resolve = lambda p: Path(p) if Path(p).is_absolute() else ROOT / p  # noqa: E731
    truth = detector_eval.read_wider_ground_truth(resolve(cfg["ground_truth"]))
    searcher = detectors.Shrunk(recognizer.detector, recognizer.min_face) if shrink else recognizer.detector
    r = detector_eval.evaluate(searcher, resolve(cfg["images"]), truth, int(recognizer.min_face), cfg["iou"])
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()}


def labelled_row(recognizer, data: dict, face_px: int, reference: dict | None, shrink: bool) -> tuple[dict, dict]:
    """Faces found, box IoU with `reference` (the full-size search's boxes) and accuracy on
    the pooled validation faces at `face_px`; also returns this setting's boxes."""
    from emorec.evaluation import cross_dataset as transfer
    from emorec.evaluation import metrics as evaluation
    from emorec.inference.boxes import iou_matrix

    boxes, right, y_true, y_pred, names, ious, total, seconds = {}, {}, [], [], None, [], 0, 0.0
    for ds, (x, y, classes) in data.items():
        crops, kept = [], []
        for i, image in enumerate(x):
            canvas = in_frame(image, face_px)
            start = time.perf_counter()
            faces = recognizer.detect(canvas, shrink=shrink)
            seconds += time.perf_counter() - start
            if not faces:
                continue
            face = max(faces, key=lambda f: f.score)
            cut, _ = recognizer.crops(canvas, [face])
            if not cut:
                continue
            boxes[ds, i] = face.box
            if reference is not None and (ds, i) in reference["boxes"]:
                ious.append(float(iou_matrix(reference["boxes"][ds, i][None], face.box[None])[0, 0]))
            crops.append(cut[0])
            kept.append(i)
        total += len(x)
        if not kept:
            continue
        probs = recognizer.classify(crops)
        t, p, shared = transfer.restrict(probs, y[np.array(kept)], list(recognizer.classes), classes)
        names = names or list(shared)
        lookup = [names.index(c) if c in names else -1 for c in shared]
        y_true += [lookup[v] for v in t]
        y_pred += [lookup[v] for v in p]
        right.update({(ds, i): bool(a == b) for i, a, b in zip(kept, t, p)})
    m = (evaluation.compute_metrics(np.array(y_true), np.array(y_pred), names) if names
         else {"accuracy": float("nan"), "macro_f1": float("nan"), "n": 0})   # no face found at all
    return {"face_px": face_px, "faces": total, "found": len(boxes), "accuracy": round(m["accuracy"], 4),
            "macro_f1": round(m["macro_f1"], 4), "n_scored": m["n"],
            "detect_ms_per_face": round(1000 * seconds / max(total, 1), 3),
            **({"box_iou_with_full_size": {"mean": round(float(np.mean(ious)), 4),
                                           "p10": round(float(np.percentile(ious, 10)), 4)}} if ious else {})}, \
        {"boxes": boxes, "right": right}


def video_row(recognizer, video: Path, every: int = 2) -> dict:
    """Faces of at least min_face px found in every `every`-th frame of a real video, full size
    and shrunk, and how many of the full-size ones the shrunk search also found (IoU >= 0.5)."""
    import cv2

    from emorec.evaluation.detectors import match

    cap = cv2.VideoCapture(str(video))
    full = shrunk = matched = frames = 0
    sizes, index = [], -1
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        index += 1
        if index % every:
            continue
        frames += 1
        a, b = recognizer.detect(frame), recognizer.detect(frame, shrink=True)
        full, shrunk, sizes = full + len(a), shrunk + len(b), sizes + [f.size for f in a]
        if a and b:
            hit, _ = match(np.array([f.box for f in a]), np.array([f.box for f in b]), 0.5)
            matched += int(hit.sum())
    cap.release()
    return {"video": video.name, "frames": frames, "faces_full_size": full, "faces_shrunk": shrunk,
            "full_size_faces_also_found_shrunk": matched,
            "median_face_px": round(float(np.median(sizes)), 1) if sizes else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model URI or path (default: params.yaml's infer.model)")
    ap.add_argument("--detector", default=None, help="default: params.yaml's infer.detector")
    ap.add_argument("--smallest", default="10", help="comma-separated smallest_face values compared with null")
    ap.add_argument("--face-px", default="32,48,96", help="comma-separated face sizes on the canvas")
    ap.add_argument("--datasets", default="fer2013,affectnet", help="prepared datasets with a val split")
    ap.add_argument("--limit", type=int, default=1500, help="a seeded sample of N faces per dataset (0: all)")
    ap.add_argument("--out", default=None, help="JSON path (default reports/benchmarks/detect_scale.json)")
    args = ap.parse_args()

    from emorec.config import load_params, resolve_model
    from emorec.data import prepared
    from emorec.errors import EmorecError
    from emorec.recognizer import EmotionRecognizer

    try:
        smallest = [int(v) for v in args.smallest.split(",") if v.strip()]
        sizes = [int(v) for v in args.face_px.split(",") if v.strip()]
    except ValueError:
        print("error: --smallest and --face-px must be comma-separated integers", file=sys.stderr)
        return 2
    if not sizes or min(sizes) < 16 or 2 * max(sizes) > min(FRAME):
        print(f"error: --face-px values must be from 16 to {min(FRAME) // 2}", file=sys.stderr)
        return 2
    params = load_params(ROOT / "params.yaml")
    detector = args.detector or params["infer"]["detector"]
    try:
        model = resolve_model(args.model or params["infer"]["model"], ROOT)   # auto: the choose stage's pick
        data = {}
        for ds in [d.strip() for d in args.datasets.split(",") if d.strip()]:
            x, y, classes = prepared.load_part(ROOT / "data" / "prepared" / ds, "val")
            if args.limit:
                pick = np.sort(np.random.default_rng(0).permutation(len(x))[:args.limit])
                x, y = x[pick], y[pick]
            data[ds] = (x, y, list(classes))
        settings = [None, *smallest]
        recognizers = {s: EmotionRecognizer.from_params(with_smallest(params, detector, s), ROOT, model=model,
                                                        detector=detector) for s in settings}
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rows, reference = [], {}
    for s, rec in recognizers.items():
        label = "full size" if s is None else f"smallest_face {s}"
        row = {"smallest_face": s, "wider": wider_row(rec, params, s is not None), "labelled": []}
        for px in sizes:
            got, found = labelled_row(rec, data, px, reference.get(px), s is not None)
            if s is None:
                reference[px] = found
            else:   # the same faces, found by both searches: the crop's effect alone
                both = sorted(set(found["right"]) & set(reference[px]["right"]))
                got["both_found"] = {"n": len(both),
                                     "accuracy_full_size": round(float(np.mean([reference[px]["right"][k] for k in both])), 4)
                                     if both else None,
                                     "accuracy_shrunk": round(float(np.mean([found["right"][k] for k in both])), 4)
                                     if both else None}
            row["labelled"].append(got)
            print(f"{label}, faces of {px} px: found {got['found']}/{got['faces']}, accuracy {got['accuracy']:.4f}, "
                  f"macro-F1 {got['macro_f1']:.4f}", flush=True)
        rows.append(row)
    print(f"\nWIDER FACE photos, faces of at least {int(recognizers[None].min_face)} px, {detector}:\n")
    print("| search | recall | found | false positives | ms / photo |\n|---|---|---|---|---|")
    for row in rows:
        w = row["wider"]
        key = next(k for k in w if k.startswith("faces_min_"))
        print(f"| {'full size' if row['smallest_face'] is None else 'smallest_face ' + str(row['smallest_face'])} "
              f"| {w['recall']:.3f} | {w['found']} / {w[key]} | {w['false_positives']} | {w['ms_per_image']:.1f} |")
    print(f"\nValidation faces ({', '.join(data)}, {args.limit or 'all'} each) through the real-time path, {model}:\n")
    print("| search | face px | found | box IoU with full size (mean / p10) | accuracy | macro-F1 | "
          "faces both found: accuracy full size / shrunk | detect ms |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for got in row["labelled"]:
            iou = got.get("box_iou_with_full_size")
            iou_text = "-" if not iou else f"{iou['mean']:.3f} / {iou['p10']:.3f}"
            both = got.get("both_found") or {}
            both_text = (f"{both['accuracy_full_size']:.4f} / {both['accuracy_shrunk']:.4f} ({both['n']})"
                         if both.get("n") else "-")
            print(f"| {'full size' if row['smallest_face'] is None else 'smallest_face ' + str(row['smallest_face'])} "
                  f"| {got['face_px']} | {got['found']} / {got['faces']} | "
                  f"{iou_text} | {got['accuracy']:.4f} | "
                  f"{got['macro_f1']:.4f} | {both_text} | {got['detect_ms_per_face']:.2f} |")
    videos = sorted((ROOT / params["infer"]["source"]).parent.glob("*.mp4"))
    shrinking = recognizers[smallest[0]] if smallest else None
    video_rows = [video_row(shrinking, v) for v in videos] if shrinking else []
    if video_rows:
        print(f"\nReal videos ({videos[0].parent}), every 2nd frame, smallest_face {smallest[0]}:\n")
        print("| video | frames | median face px | faces full size | faces shrunk | full-size faces also found shrunk |")
        print("|---|---|---|---|---|---|")
        for v in video_rows:
            print(f"| {v['video']} | {v['frames']} | {v['median_face_px']} | {v['faces_full_size']} | "
                  f"{v['faces_shrunk']} | {v['full_size_faces_also_found_shrunk']} |")
    path = save("detect_scale", {"model": model, "detector": detector, "limit": args.limit,
                                 "min_face": recognizers[None].min_face, "rows": rows,
                                 "videos": video_rows},
                Path(args.out) if args.out else None)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
