"""Detector accuracy on WIDER FACE photos: recall at IoU >= 0.5 for faces of at least
`min_face` pixels, and false positives (detections matching no face of any size)."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np

from emorec.errors import DataFormatError
from emorec.inference.boxes import iou_matrix


def read_wider_ground_truth(path: Path) -> dict[str, np.ndarray]:
    """WIDER format: file name, face count, then one `x y w h ...` line per face (a
    zero-face image may carry one dummy line of zeros)."""
    lines = [ln.strip() for ln in Path(path).read_text().splitlines() if ln.strip()]
    out: dict[str, np.ndarray] = {}
    i = 0
    try:
        while i < len(lines):
            name, count = lines[i], int(lines[i + 1])
            i += 2
            boxes = [list(map(float, lines[i + k].split()[:4])) for k in range(count)]
            i += count
            if count == 0 and i < len(lines) and _is_box_line(lines[i]):
                i += 1
            out[name] = np.array(boxes, float).reshape(-1, 4)
    except (IndexError, ValueError) as exc:
        raise DataFormatError(f"{path}, near line {i + 1}: not WIDER ground-truth format ({exc})") from None
    return out


def _is_box_line(line: str) -> bool:
    parts = line.split()
    return len(parts) >= 4 and all(p.lstrip("-").replace(".", "", 1).isdigit() for p in parts)


def match(gt_xyxy: np.ndarray, det_xyxy: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Greedy one-to-one matching by IoU; returns (gt matched?, detection matched?)."""
    ious = iou_matrix(gt_xyxy, det_xyxy)
    gt_hit = np.zeros(len(gt_xyxy), bool)
    det_hit = np.zeros(len(det_xyxy), bool)
    for flat in np.argsort(-ious, axis=None):
        g, d = np.unravel_index(flat, ious.shape)
        if ious[g, d] < threshold:
            break
        if not gt_hit[g] and not det_hit[d]:
            gt_hit[g] = det_hit[d] = True
    return gt_hit, det_hit


def evaluate(detector, images_dir: Path, ground_truth: dict[str, np.ndarray], min_face: int = 20,
             iou: float = 0.5) -> dict:
    found = missed = false_pos = detections = 0
    seconds = 0.0
    for name, gt in sorted(ground_truth.items()):
        frame = cv2.imread(str(images_dir / name))
        if frame is None:
            raise DataFormatError(f"{images_dir / name}: cannot read image")
        start = time.perf_counter()
        faces = detector.detect(frame)
        seconds += time.perf_counter() - start
        gt_xyxy = np.hstack([gt[:, :2], gt[:, :2] + gt[:, 2:]]) if len(gt) else np.zeros((0, 4))
        det = np.array([f.box for f in faces]).reshape(-1, 4)
        gt_hit, det_hit = match(gt_xyxy, det, iou)
        counted = np.minimum(gt[:, 2], gt[:, 3]) >= min_face if len(gt) else np.zeros(0, bool)
        found += int((gt_hit & counted).sum())
        missed += int((~gt_hit & counted).sum())
        false_pos += int((~det_hit).sum())
        detections += len(det)
    n_images = len(ground_truth)
    return {"images": n_images, f"faces_min_{min_face}px": found + missed, "found": found,
            "recall": found / max(found + missed, 1), "detections": detections,
            "false_positives": false_pos, "precision": (detections - false_pos) / max(detections, 1),
            "ms_per_image": 1000 * seconds / max(n_images, 1), "iou_threshold": iou}
