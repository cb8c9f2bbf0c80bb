"""Photos are photos: each image on its own, at its own size, no tracking across images
and no FPS counter. One annotated image and one JSON record per photo.

On a crowded photo, labels written beside each box overlap into an unreadable band, so
faces are numbered on the photo and a legend panel to its right gives each number's
emotion and confidence (the photo itself keeps its size; the panel widens the canvas)."""

from __future__ import annotations

import glob
import json
import time
from pathlib import Path

import cv2
import numpy as np

from emorec import files
from emorec.errors import EmorecError
from emorec.inference.drawing import COLOURS

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


def is_photo_source(source: str) -> bool:
    """An image file, a folder (of images), or a glob pattern."""
    if any(ch in source for ch in "*?["):
        return True
    path = Path(source)
    return path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES


def photo_paths(source: str) -> list[Path]:
    if any(ch in source for ch in "*?["):
        found = sorted(Path(p) for p in glob.glob(source, recursive=True))
        paths = [p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
        if not paths:
            raise EmorecError(f"{source}: the pattern matches no image ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return paths
    path = Path(source)
    if not path.exists():
        raise EmorecError(f"input {path} not found")
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise EmorecError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return paths
    return [path]


def annotate(image: np.ndarray, faces: list, panel_width: int = 230) -> np.ndarray:
    """Boxes numbered on the photo, a legend (number, emotion, confidence) beside it."""
    h, w = image.shape[:2]
    thick = max(1, round(min(h, w) / 400))
    rows = max(len(faces), 1)
    row_h = 22
    canvas = np.full((max(h, rows * row_h + 40), w + panel_width, 3), 255, np.uint8)
    canvas[:h, :w] = image
    for i, face in enumerate(faces, 1):
        colour = COLOURS[(i - 1) % len(COLOURS)]
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thick)
        tag = str(i)
        scale = 0.4 if (x2 - x1) < 40 else 0.55
        (tw, th), _ = cv2.getTextSize(tag, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        ty = y1 - 3 if y1 - th - 4 >= 0 else min(y2 + th + 3, h - 1)
        cv2.rectangle(canvas, (x1, ty - th - 2), (x1 + tw + 3, ty + 2), colour, -1)
        cv2.putText(canvas, tag, (x1 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    x0 = w + 8
    cv2.putText(canvas, f"{len(faces)} face(s)", (x0, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1,
                cv2.LINE_AA)
    for i, face in enumerate(faces, 1):
        y = 20 + i * row_h
        colour = COLOURS[(i - 1) % len(COLOURS)]
        cv2.rectangle(canvas, (x0, y - 12), (x0 + 12, y), colour, -1)
        cv2.putText(canvas, f"{i}: {face.label} {face.score:.2f}", (x0 + 18, y), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


def run(paths: list[Path], recognizer, out_dir: Path) -> dict:
    """Every photo: `<out>/<name>` annotated, a record in `<out>/photos.jsonl`, and
    `<out>/summary.json` with the faces per photo and the photos that could not be read."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records, unreadable, no_face = [], [], []
    start = time.perf_counter()
    names_seen: set[str] = set()
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            unreadable.append(str(path))
            records.append({"photo": str(path), "error": "not a readable image"})
            continue
        faces = recognizer.predict(image)
        name = path.name if path.name not in names_seen else f"{path.parent.name}_{path.name}"
        names_seen.add(name)
        ok, buf = cv2.imencode(path.suffix if path.suffix.lower() != ".webp" else ".png",
                               annotate(image.copy(), faces))
        if not ok:
            raise EmorecError(f"{path}: cannot encode the annotated image")
        files.write_bytes(out_dir / name, buf.tobytes())
        if not faces:
            no_face.append(str(path))
        records.append({"photo": str(path), "annotated": name, "width": image.shape[1],
                        "height": image.shape[0], "faces": [f.to_dict() for f in faces]})
    files.write_text(out_dir / "photos.jsonl", "".join(json.dumps(r) + "\n" for r in records))
    summary = {
        "kind": "photos", "photos": len(paths), "read": len(paths) - len(unreadable),
        "faces": sum(len(r.get("faces", [])) for r in records),
        "faces_per_photo": {r["photo"]: len(r["faces"]) for r in records if "faces" in r},
        "unreadable": unreadable, "without_faces": no_face,
        "seconds": round(time.perf_counter() - start, 3), "classes": list(recognizer.classes),
    }
    files.write_json(out_dir / "summary.json", summary)
    return summary
