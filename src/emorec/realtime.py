"""Real-time inference: detect faces, track them, classify all faces of a frame in one
batch, smooth each track's probabilities over time, and write an annotated video,
per-frame records and a summary with an emotion timeline per track."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from emorec import io
from emorec.detector_eval import iou_matrix
from emorec.errors import EmorecError
from emorec.preprocess import InputSpec, to_model_input

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


# ----------------------------------------------------------------------------- model source
class Classifier:
    """A trained model from the registry (`models:/name@alias`), a `.keras` file, or an
    ONNX / TFLite export; the input spec and class names travel with it.

    Keras models predict through their compiled predict step (`predict_on_batch`), about
    8x faster than an eager call on a one-face batch. Exports run on `threads` intra-op
    threads (default 1; 0 or None: the runtime's default), which leaves the other cores to
    the detector."""

    def __init__(self, source: str, root: Path | None = None, threads: int | None = 1):
        self.source = source
        if source.startswith("models:/") or source.startswith("runs:/"):
            self._from_mlflow(source)
        else:
            path = Path(source)
            if not path.is_absolute() and root is not None:
                path = root / path
            if not path.exists():
                raise EmorecError(f"model {path} not found")
            self.spec = self._spec_beside(path)
            suffix = path.suffix.lower()
            if suffix == ".keras":
                from emorec import models

                try:
                    model = models.load_file(path)
                except Exception as exc:
                    raise EmorecError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
                self._predict = model.predict_on_batch
            elif suffix in (".onnx", ".tflite"):
                from emorec.export import Runner

                try:
                    runner = Runner("onnx" if suffix == ".onnx" else "tflite_float32", path, threads)
                except Exception as exc:
                    raise EmorecError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
                self._predict = runner
            else:
                raise EmorecError(f"{path}: unsupported model file; use .keras, .onnx or .tflite")

    def _from_mlflow(self, uri: str) -> None:
        import mlflow

        from emorec import tracking

        try:
            info = mlflow.models.get_model_info(uri)
            self.spec = InputSpec.from_dict(mlflow.artifacts.load_dict(f"runs:/{info.run_id}/preprocessing.json"))
            model = tracking.load_logged_keras(uri)
        except Exception as exc:
            raise EmorecError(f"cannot load {uri} from {mlflow.get_tracking_uri()} ({type(exc).__name__}: "
                              f"{str(exc)[:300]}); run `dvc repro` or pass a model file with --model") from exc
        self._predict = model.predict_on_batch

    @staticmethod
    def _spec_beside(path: Path) -> InputSpec:
        for candidate in (path.parent / "preprocessing.json", path.parent / "run.json"):
            if candidate.exists():
                data = io.read_json(candidate)
                return InputSpec.from_dict(data.get("input_spec", data))
        raise EmorecError(f"{path}: no preprocessing.json or run.json beside the model, so its input "
                          "size, channels and class names are unknown")

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    def predict_faces(self, faces_rgb: list[np.ndarray]) -> np.ndarray:
        """uint8 RGB face crops of any size -> class probabilities, one batch."""
        if not faces_rgb:
            return np.zeros((0, len(self.classes)), np.float32)
        batch = np.stack([cv2.resize(f, (self.spec.size, self.spec.size), interpolation=cv2.INTER_AREA)
                          for f in faces_rgb])
        return np.asarray(self._predict(to_model_input(batch, self.spec)), np.float32)


# ----------------------------------------------------------------------------- face crops
def crop_face(frame_bgr: np.ndarray, box: np.ndarray, margin: float, landmarks: np.ndarray | None = None,
              align: bool = False) -> np.ndarray | None:
    """A square RGB crop around `box` grown by `margin`; eyes levelled when `align`."""
    h, w = frame_bgr.shape[:2]
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1) * (1 + 2 * margin)
    if side < 2:
        return None
    if align and landmarks is not None:
        (rx, ry), (lx, ly) = landmarks[0], landmarks[1]
        angle = np.degrees(np.arctan2(ly - ry, lx - rx))
        if lx < rx:  # landmark order differs between detectors: level the eye line either way
            angle = np.degrees(np.arctan2(ry - ly, rx - lx))
        m = cv2.getRotationMatrix2D((float(cx), float(cy)), float(angle), 1.0)
        frame_bgr = cv2.warpAffine(frame_bgr, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    half = side / 2
    xa, ya, xb, yb = int(round(cx - half)), int(round(cy - half)), int(round(cx + half)), int(round(cy + half))
    pad = max(0, -xa, -ya, xb - w, yb - h)
    if pad:
        frame_bgr = cv2.copyMakeBorder(frame_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        xa, ya, xb, yb = xa + pad, ya + pad, xb + pad, yb + pad
    crop = frame_bgr[ya:yb, xa:xb]
    return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) if crop.size else None


# ----------------------------------------------------------------------------- tracking
@dataclass
class Track:
    track_id: int
    box: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray | None = None
    missed: int = 0
    hits: int = 1
    timeline: list = field(default_factory=list)  # (frame, smoothed probs)


class Tracker:
    """Greedy IoU matching of detections to tracks; EMA smoothing of class probabilities."""

    def __init__(self, iou_threshold: float = 0.3, ema: float = 0.6, max_missed: int = 10):
        if not 0 <= ema < 1:
            raise EmorecError(f"params.yaml: infer.ema must be in [0, 1), got {ema}")
        self.iou_threshold, self.ema, self.max_missed = iou_threshold, ema, max_missed
        self.tracks: list[Track] = []
        self.next_id = 1
        self.finished: list[Track] = []

    def assign(self, boxes: np.ndarray) -> list[Track | None]:
        """For each detection, the live track it continues (None: a new face)."""
        ious = iou_matrix(boxes, np.array([t.box for t in self.tracks]).reshape(-1, 4))
        owner: list[Track | None] = [None] * len(boxes)
        used = set()
        for flat in np.argsort(-ious, axis=None) if ious.size else []:
            d, t = np.unravel_index(flat, ious.shape)
            if ious[d, t] < self.iou_threshold:
                break
            if owner[d] is None and t not in used:
                owner[d] = self.tracks[t]
                used.add(t)
        return owner

    def update(self, frame_index: int, boxes: np.ndarray, probs: np.ndarray,
               landmarks: list[np.ndarray | None]) -> list[Track]:
        owners = self.assign(boxes)
        seen = []
        for box, p, lm, track in zip(boxes, probs, landmarks, owners):
            if track is None:
                track = Track(self.next_id, box, p.copy(), lm)
                self.next_id += 1
                self.tracks.append(track)
            else:
                track.box, track.landmarks, track.missed = box, lm, 0
                track.probs = self.ema * track.probs + (1 - self.ema) * p
                track.hits += 1
            track.timeline.append((frame_index, track.probs.copy()))
            seen.append(track)
        for track in self.tracks:
            if all(track is not s for s in seen):
                track.missed += 1
        self.finished += [t for t in self.tracks if t.missed > self.max_missed]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return seen

    def all_tracks(self) -> list[Track]:
        return sorted(self.finished + self.tracks, key=lambda t: t.track_id)


# ----------------------------------------------------------------------------- inputs
@dataclass
class Source:
    frames: Iterator[tuple[int, float, np.ndarray | None]]
    fps: float
    size: tuple[int, int] | None
    total: int | None
    kind: str
    release: callable = lambda: None


def open_source(source: str) -> Source:
    """A webcam index, a video file, an image, or a folder of images."""
    if source.isdigit():
        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise EmorecError(f"camera {source} cannot be opened (no such device, or it is in use)")
        return _video_frames(cap, "camera")
    path = Path(source)
    if not path.exists():
        raise EmorecError(f"input {path} not found")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EmorecError(f"{path}: folder holds no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        return Source(((i, float(i), cv2.imread(str(f))) for i, f in enumerate(files)), 1.0, None,
                      len(files), "images")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        frame = cv2.imread(str(path))
        if frame is None:
            raise EmorecError(f"{path}: cannot read image")
        return Source(iter([(0, 0.0, frame)]), 1.0, (frame.shape[1], frame.shape[0]), 1, "image")
    cap = cv2.VideoCapture(str(path))
    ok, first = cap.read()
    if not cap.isOpened() or not ok:
        cap.release()
        raise EmorecError(f"{path}: cannot read video (unsupported, damaged or empty)")
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    return _video_frames(cap, "video")


def _video_frames(cap, kind: str) -> Source:
    fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if kind == "video" else None
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))

    def frames():
        index = 0
        while True:
            grabbed = cap.grab()
            if not grabbed:
                if total and index < total:  # a frame that will not decode mid-stream
                    index += 1
                    yield index - 1, (index - 1) / fps, None
                    if index < total:
                        cap.set(cv2.CAP_PROP_POS_FRAMES, index)
                        continue
                return
            ok, frame = cap.retrieve()
            yield index, index / fps, frame if ok else None
            index += 1

    return Source(frames(), fps, size, total, kind, cap.release)


# ----------------------------------------------------------------------------- overlapped I/O
_END = object()


class Prefetch:
    """Decode the next frames on a background thread while the current one is processed;
    OpenCV releases the GIL while it decodes. `close()` stops the thread before the
    capture is released, so the two never touch it at once."""

    def __init__(self, frames: Iterator, depth: int = 4):
        self._queue: queue.Queue = queue.Queue(depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, args=(frames,), daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self, frames: Iterator) -> None:
        try:
            for item in frames:
                if not self._put(item):
                    return
        except BaseException as exc:  # re-raised on the main thread by next()
            self._error = exc
        self._put(_END)

    def next(self):
        """The next (index, time, frame), or None at the end of the source."""
        item = self._queue.get()
        if item is _END:
            if self._error is not None:
                raise self._error
            return None
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


class BackgroundWriter:
    """cv2.VideoWriter fed from a queue on its own thread; encoding overlaps the next frame."""

    def __init__(self, writer, depth: int = 8):
        self._writer = writer
        self._queue: queue.Queue = queue.Queue(depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        while (frame := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._writer.write(frame)
                except BaseException as exc:
                    self._error = exc

    def write(self, frame: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(frame)

    def release(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._writer.release()
        if self._error is not None:
            raise self._error


class _Inline:
    """The same interfaces without threads (`threaded_io: false`)."""

    def __init__(self, frames: Iterator):
        self._frames = iter(frames)

    def next(self):
        return next(self._frames, None)

    def close(self) -> None:
        pass


# ----------------------------------------------------------------------------- drawing
COLOURS = [(66, 135, 245), (245, 66, 93), (66, 245, 138), (245, 200, 66), (200, 66, 245), (66, 236, 245)]


def draw(frame: np.ndarray, tracks: list[Track], classes: tuple[str, ...], fps: float) -> np.ndarray:
    for t in tracks:
        x1, y1, x2, y2 = (int(round(v)) for v in t.box)
        colour = COLOURS[t.track_id % len(COLOURS)]
        k = int(np.argmax(t.probs))
        label = f"#{t.track_id} {classes[k]} {t.probs[k]:.2f}"
        cv2.rectangle(frame, (x1, y1), (x2, y2), colour, 2)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)
        cv2.rectangle(frame, (x1, max(0, y1 - th - 6)), (x1 + tw + 4, y1), colour, -1)
        cv2.putText(frame, label, (x1 + 2, max(th, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                    cv2.LINE_AA)
    cv2.putText(frame, f"{fps:.1f} FPS", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 255, 255), 2, cv2.LINE_AA)
    return frame


def timeline_figure(tracks: list[Track], classes: tuple[str, ...], fps: float, path: Path, min_hits: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [t for t in tracks if t.hits >= min_hits]
    fig, axes = plt.subplots(max(len(shown), 1), 1, figsize=(9, 1.9 * max(len(shown), 1) + 0.6), squeeze=False)
    for ax, t in zip(axes[:, 0], shown):
        frames = np.array([f for f, _ in t.timeline])
        probs = np.array([p for _, p in t.timeline])
        ax.stackplot(frames / fps, probs.T, labels=classes)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"track {t.track_id}")
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no face tracked", ha="center", va="center")
        axes[0, 0].axis("off")
    else:
        axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    axes[-1, 0].set_xlabel("seconds")
    fig.suptitle("smoothed emotion probabilities per track", fontsize=10)
    fig.tight_layout()
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


# ----------------------------------------------------------------------------- the loop
@dataclass
class InferConfig:
    margin: float = 0.15
    align: bool = False
    ema: float = 0.6
    iou_threshold: float = 0.3
    max_missed: int = 10
    detect_every: int = 1
    min_face: int = 20
    min_track_frames: int = 3
    show: bool = False
    max_frames: int | None = None
    threaded_io: bool = True      # decode ahead and encode the video on background threads


def run(source: Source, detector, classifier: Classifier, cfg: InferConfig, out_dir: Path,
        progress: bool = True) -> dict:
    """Process every frame; write video.mp4, frames.jsonl, summary.json, timeline.png."""
    from tqdm import tqdm

    classes = classifier.classes
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
                faces = [f for f in detector.detect(frame) if f.size >= cfg.min_face]
                counts["detector_runs"] += 1
            else:  # between detections, the live tracks' last boxes stand in
                from emorec.detectors import Face

                faces = [Face(t.box, 1.0, t.landmarks) for t in tracker.tracks if t.missed == 0]
            last_faces = faces
            t1 = time.perf_counter()
            crops, kept = [], []
            for f in faces:
                crop = crop_face(frame, f.box, cfg.margin, f.landmarks, cfg.align)
                if crop is not None:
                    crops.append(crop)
                    kept.append(f)
            t2 = time.perf_counter()
            probs = classifier.predict_faces(crops)
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
                                         source.fps if source.kind in ("video", "camera") else 1.0, video_size)
                if cfg.threaded_io:
                    writer = BackgroundWriter(writer)
            if (annotated.shape[1], annotated.shape[0]) != video_size:  # images of other sizes
                annotated = cv2.resize(annotated, video_size)
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
        "classes": list(classes),
    }
    timeline_figure(tracks, classes, source.fps, work / "timeline.png", cfg.min_track_frames)
    per_track = work / "timelines"
    per_track.mkdir(exist_ok=True)
    for t in tracks:
        if t.hits >= cfg.min_track_frames:
            timeline_figure([t], classes, source.fps, per_track / f"track_{t.track_id:04d}.png", cfg.min_track_frames)
    io.write_json(work / "summary.json", summary)
    for name in ("frames.jsonl", "summary.json", "timeline.png", "video.mp4", "timelines"):
        if (out_dir / name).is_dir():
            import shutil

            shutil.rmtree(out_dir / name)
        if (work / name).exists():
            os.replace(work / name, out_dir / name)
    if not any(work.iterdir()):
        work.rmdir()
    return summary
