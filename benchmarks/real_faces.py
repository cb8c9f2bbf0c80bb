"""What a classifier calls real faces it was never trained on: the WIDER FACE photos and
the webcam and close-up videos in ../shared, through the real-time path (detector, crop,
classifier).

These faces carry no emotion labels, so the figures are shares: of all detected faces,
and of the large ones (short side >= 48 px, FER2013's own size), the share given each
class. The complaint users file most against peer tools, and against our first champion,
is neutral faces called "sad"; the "sad" share is the figure to watch. A share is not an
accuracy: read it beside the test-split figures of reports/recipe/.

    python benchmarks/real_faces.py --model models:/emorec-fer2013@champion
    python benchmarks/real_faces.py --recipe-run runs/recipe/cpu-shift [--recipe-run ...]

A recipe run (a folder of the standalone runner: results.json and *.weights.h5) is
loaded through `recipe_report.to_keras_file`, with the temperature reports/recipe/runs.json
recorded for it. Writes reports/benchmarks/real_faces.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
from _common import ROOT, save  # noqa: E402

SHARED = ROOT.parent / "shared" / "media"
PHOTOS = SHARED / "wider_val" / "images"
VIDEO = SHARED / "videos" / "webcam_640x480_one_face.mp4"
CLOSEUP = SHARED / "videos" / "closeup_436x384_one_face.mp4"
LARGE = 48
MARKED_RED = 0.05     # a face box with at least this share of saturated red pixels is overlaid


def shares(faces: list[tuple[str, float]], classes, min_side: float = 0) -> dict:
    """(label, short side) per face -> {n, share per class} over faces at least min_side."""
    kept = [label for label, side in faces if side >= min_side]
    counts = Counter(kept)
    return {"n": len(kept), "share": {c: round(counts[c] / len(kept), 4) if kept else None for c in classes}}


def detected(recognizer, images):
    """Each face the recognizer finds in `images`, with the short side of its box."""
    for image in images:
        for face in recognizer.predict(image):
            x1, y1, x2, y2 = face.box
            yield face, min(x2 - x1, y2 - y1)


def red_share(image_bgr, box) -> float:
    """Share of the box's pixels that are saturated red (the webcam video's burned-in overlay
    is a red box with a filled red name tag); 0 for a box outside the image."""
    h, w = image_bgr.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    roi = image_bgr[max(y1, 0):min(y2, h), max(x1, 0):min(x2, w)].astype(int)
    if roi.size == 0:
        return 0.0
    b, g, r = roi[..., 0], roi[..., 1], roi[..., 2]
    return float(((r > 170) & (g < 80) & (b < 80)).mean())


def video_faces(recognizer, path: Path) -> list[tuple[str, float, bool]]:
    """(label, short side, overlaid) of every face-frame the recognizer finds in a video."""
    out = []
    for frame in video_frames(path):
        for face, side in detected(recognizer, [frame]):
            out.append((face.label, side, red_share(frame, face.box) >= MARKED_RED))
    return out


def video_entry(path: Path, found: list[tuple[str, float, bool]], classes) -> dict:
    """A video's shares over all its face-frames and over those without the overlay."""
    sides = sorted(side for _, side, _ in found)
    return {"video": path.name, "all": shares([(lab, s) for lab, s, _ in found], classes),
            "unmarked": shares([(lab, s) for lab, s, marked in found if not marked], classes),
            "marked_n": sum(marked for _, _, marked in found),
            "median_side": round(sides[len(sides) // 2], 1) if sides else None}


def faces_in(recognizer, images) -> list[tuple[str, float]]:
    """(label, short side of the detected box) of every face the recognizer finds."""
    return [(face.label, side) for face, side in detected(recognizer, images)]


def video_frames(path: Path):
    """The video's decodable frames, read as the real-time loop reads them."""
    from emorec.inference.media import open_source

    source = open_source(str(path))
    try:
        yield from (frame for _, _, frame in source.frames if frame is not None)
    finally:
        source.release()


def recipe_models(folder: Path, work: Path, scores: Path) -> list[tuple[str, Path]]:
    """(name, .keras file) of each kept-weights run in a standalone runner's folder."""
    from emorec.training import recipe_report

    scored = {r["name"]: r for r in json.loads(scores.read_text())} if scores.is_file() else {}
    out = []
    for result in json.loads((folder / "results.json").read_text()):
        weights = folder / f"{result.get('name')}.weights.h5"
        if "skipped" in result or not weights.is_file():
            continue
        result = {**result, "scored": (scored.get(result["name"]) or {}).get("scored")}
        out.append((result["name"], recipe_report.to_keras_file(result, weights, work / result["name"])))
    return out


def add_model_args(ap: argparse.ArgumentParser) -> None:
    """--model / --recipe-run / --scores: the models a benchmark of trained classifiers takes."""
    ap.add_argument("--model", action="append", default=[], help="a registry URI or a .keras/.onnx/.tflite file")
    ap.add_argument("--recipe-run", action="append", default=[], type=Path,
                    help="a standalone runner's folder (results.json and *.weights.h5)")
    ap.add_argument("--scores", type=Path, default=ROOT / "reports" / "recipe" / "runs.json",
                    help="recipe_report's runs.json, for each recipe run's temperature")


def model_targets(args, work: Path) -> list[tuple[str, str]]:
    """(name, model) for each --model and each kept-weights run of each --recipe-run folder."""
    if not args.model and not args.recipe_run:
        raise SystemExit("give --model or --recipe-run")
    for folder in args.recipe_run:
        if not (folder / "results.json").is_file():
            raise SystemExit(f"--recipe-run {folder}: no results.json there")
    targets = [(m, m) for m in args.model]
    for folder in args.recipe_run:
        targets += [(name, str(path)) for name, path in recipe_models(folder, work, args.scores)]
    return targets


def measure(name: str, model: str, params: dict) -> dict:
    from emorec.recognizer import EmotionRecognizer

    rec = EmotionRecognizer.from_params(params, ROOT, model=model)
    photos = sorted(PHOTOS.rglob("*.jpg"))
    photo_faces = faces_in(rec, [cv2.imread(str(p)) for p in photos])
    classes = list(rec.classes)
    row = {"model": name, "detector": rec.detector_name, "classes": classes,
           "photos": {"images": len(photos), "all": shares(photo_faces, classes),
                      "large": shares(photo_faces, classes, LARGE)},
           "webcam_video": video_entry(VIDEO, video_faces(rec, VIDEO), classes)}
    if CLOSEUP.is_file():
        row["closeup_video"] = video_entry(CLOSEUP, video_faces(rec, CLOSEUP), classes)
    print(f"{name}: sad share, photos {row['photos']['all']['share'].get('sad')} "
          f"(large faces {row['photos']['large']['share'].get('sad')}), "
          f"webcam video {row['webcam_video']['all']['share'].get('sad')}; neutral share, close-up video "
          f"{(row.get('closeup_video') or {}).get('all', {}).get('share', {}).get('neutral')}", flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    def top(s):
        ranked = sorted(((-v, c) for c, v in s["share"].items() if v))[:3]    # ties: by name
        return ", ".join(f"{c} {-v:.2f}" for v, c in ranked)

    lines = ["| model | photos: faces (large) | sad, all faces | sad, large faces | top classes, all photo faces | "
             "webcam video: face-frames | sad | top classes |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p, v = r["photos"], r["webcam_video"]["all"]
        lines.append(f"| {r['model']} | {p['all']['n']} ({p['large']['n']}) | {p['all']['share'].get('sad')} | "
                     f"{p['large']['share'].get('sad')} | {top(p['all'])} | {v['n']} | {v['share'].get('sad')} | "
                     f"{top(v)} |")
    measured = [r for r in rows if "unmarked" in r["webcam_video"]]     # older files: the first table only
    if measured:
        lines += ["", "| model | video | face-frames | median face (px) | neutral | sad | top classes |",
                  "|---|---|---|---|---|---|---|"]
    for r in measured:
        for e in filter(None, (r["webcam_video"], r.get("closeup_video"))):
            parts = [("all", e["video"])]
            if e["marked_n"]:
                parts.append(("unmarked", f"{e['video']} without the overlay ({e['marked_n']} marked left out)"))
            for part, what in parts:
                s = e[part]
                lines.append(f"| {r['model']} | {what} | {s['n']} | {e['median_side']} | "
                             f"{s['share'].get('neutral')} | {s['share'].get('sad')} | {top(s)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from emorec.config import load_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(ap)
    ap.add_argument("--out", type=Path, default=None, help="default: reports/benchmarks/real_faces.json")
    args = ap.parse_args(argv)
    if not any(PHOTOS.rglob("*.jpg")) or not VIDEO.is_file():
        raise SystemExit(f"{SHARED}: the WIDER FACE photos and the webcam video are needed (../shared)")
    params = load_params(ROOT / "params.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, model in model_targets(args, Path(work)):
            rows.append(measure(name, model, params))
    save("real_faces", {"large_face_px": LARGE, "rows": rows}, args.out)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
