"""The real-time loop: detect faces, track them, classify all faces of a frame in one
batch, smooth each track's probabilities over time, and write an annotated video,
per-frame records and a summary with an emotion timeline per track."""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emorec import files
from emorec.inference.classifier import Classifier, crop_face  # noqa: F401  (the loop's parts)
from emorec.inference.drawing import draw, timeline_figure
from emorec.inference.media import BackgroundWriter, Prefetch, Source, _Inline, open_source  # noqa: F401
from emorec.inference.tracker import Track, Tracker  # noqa: F401


# ----------------------------------------------------------------------------- the loop
@dataclass
class InferConfig:
    """The loop's own settings; margin, alignment and the smallest face are the recognizer's."""
    ema: float = 0.6
    iou_threshold: float = 0.3
    max_missed: int = 10
    detect_every: int = 1
    min_track_frames: int = 3
    show: bool = False
    max_frames: int | None = None
    threaded_io: bool = True      # decode ahead and encode the video on background threads
    shrink_frames: bool = True    # search frames shrunk to the detector's smallest_face (EmotionRecognizer.detect)


def run(source: Source, recognizer, cfg: InferConfig, out_dir: Path, progress: bool = True) -> dict:
    """Process every frame with `recognizer` (an emorec.EmotionRecognizer); write video.mp4,
    frames.jsonl, summary.json, timeline.png."""
    from tqdm import tqdm

    classes = recognizer.classes
    tracker = Tracker(cfg.iou_threshold, cfg.ema, cfg.max_missed)
    timings = defaultdict(float)
    counts = defaultdict(int)
    show = cfg.show and bool(os.environ.get("DISPLAY"))
    writer = None
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".partial"
    work.mkdir(exist_ok=True)
    records = open(work / "frames.jsonl", "w", encoding="utf-8")
    last_faces: list = []
    start_all = time.perf_counter()
    bar = tqdm(total=source.total, unit="frame", disable=not progress, desc="infer")
    frames = Prefetch(source.frames) if cfg.threaded_io else _Inline(source.frames)
    interrupted = False
    try:
        while True:
            if cfg.max_frames is not None and counts["frames"] >= cfg.max_frames:
                break
            tick = time.perf_counter()
            item = frames.next()
            if item is None:
                break
            index, t_video, frame = item
            bar.update(1)
            if frame is None:
                counts["undecodable_frames"] += 1
                continue
            counts["frames"] += 1
            timings["decode"] += time.perf_counter() - tick
            t0 = time.perf_counter()
            if index % max(cfg.detect_every, 1) == 0 or not last_faces:
                faces = recognizer.detect(frame, shrink=cfg.shrink_frames)
                counts["detector_runs"] += 1
            else:  # between detections, the live tracks' last boxes stand in
                from emorec.inference.detectors import Face

                faces = [Face(t.box, 1.0, t.landmarks) for t in tracker.tracks if t.missed == 0]
            last_faces = faces
            t1 = time.perf_counter()
            crops, kept = recognizer.crops(frame, faces)
            t2 = time.perf_counter()
            probs = recognizer.classify(crops)
            t3 = time.perf_counter()
            boxes = np.array([f.box for f in kept]).reshape(-1, 4)
            tracks = tracker.update(index, boxes, probs, [f.landmarks for f in kept])
            counts["faces"] += len(kept)
            elapsed = time.perf_counter() - start_all
            annotated = draw(frame, tracks, classes, counts["frames"] / max(elapsed, 1e-9))
            t4 = time.perf_counter()
            if writer is None:
                video_size = (annotated.shape[1], annotated.shape[0])
                writer = cv2.VideoWriter(str(work / "video.mp4"), cv2.VideoWriter_fourcc(*"mp4v"),
                                         source.fps, video_size)
                if cfg.threaded_io:
                    writer = BackgroundWriter(writer)
            writer.write(annotated)
            for t in tracks:
                records.write(json.dumps({
                    "frame": index, "time_s": round(t_video, 4), "track_id": t.track_id,
                    "box": [round(float(v), 1) for v in t.box],
                    "emotion": classes[int(np.argmax(t.probs))],
                    "probabilities": {c: round(float(p), 4) for c, p in zip(classes, t.probs)}}) + "\n")
            t5 = time.perf_counter()
            if show:
                cv2.imshow("emorec", annotated)
                if cv2.waitKey(1) & 0xFF == ord("q"):
                    break
            for stage, (a, b) in {"detect": (t0, t1), "preprocess": (t1, t2), "classify": (t2, t3),
                                  "draw": (t3, t4), "encode": (t4, t5)}.items():
                timings[stage] += b - a
    except KeyboardInterrupt:   # Ctrl-C (or SIGTERM, see stages.infer): stop and write what we have
        interrupted = True
    finally:
        bar.close()
        records.close()
        frames.close()
        source.release()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    total = time.perf_counter() - start_all
    n = max(counts["frames"], 1)
    tracks = tracker.all_tracks()
    summary = {
        "frames": counts["frames"], "undecodable_frames": counts["undecodable_frames"],
        "faces_classified": counts["faces"], "detector_runs": counts["detector_runs"],
        "tracks": len([t for t in tracks if t.hits >= cfg.min_track_frames]),
        "seconds": round(total, 3), "fps": round(counts["frames"] / max(total, 1e-9), 2),
        "ms_per_frame": {k: round(1000 * v / n, 3) for k, v in timings.items()},
        "per_track": [{"track_id": t.track_id, "frames": t.hits,
                       "dominant_emotion": classes[int(np.argmax(np.mean([p for _, p in t.timeline], axis=0)))],
                       "mean_probabilities": {c: round(float(v), 4) for c, v in
                                              zip(classes, np.mean([p for _, p in t.timeline], axis=0))}}
                      for t in tracks if t.hits >= cfg.min_track_frames],
        "classes": list(classes), "interrupted": interrupted,
    }
    timeline_figure(tracks, classes, source.fps, work / "timeline.png", cfg.min_track_frames)
    per_track = work / "timelines"
    per_track.mkdir(exist_ok=True)
    for t in tracks:
        if t.hits >= cfg.min_track_frames:
            timeline_figure([t], classes, source.fps, per_track / f"track_{t.track_id:04d}.png", cfg.min_track_frames)
    files.write_json(work / "summary.json", summary)
    for name in ("frames.jsonl", "summary.json", "timeline.png", "video.mp4", "timelines"):
        if (out_dir / name).is_dir():
            import shutil

            shutil.rmtree(out_dir / name)
        if (work / name).exists():
            os.replace(work / name, out_dir / name)
    if not any(work.iterdir()):
        work.rmdir()
    return summary
