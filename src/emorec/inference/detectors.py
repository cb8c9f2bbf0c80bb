"""Face detectors behind one interface: `detect(frame_bgr) -> list[Face]`.

Backends: `haar` (OpenCV's bundled cascade, no download), `yunet` (cv2.FaceDetectorYN,
ONNX), `retinaface-mobilenet` (RetinaFace with a MobileNet-0.25 backbone from ONNX; prior
boxes, decoding and NMS written here) and `retinaface` (the `retina-face` package with
the paper's ResNet-50 backbone). Weights come from configured paths; nothing is
downloaded at import time, and a missing file is one clear message naming it.
"""

from __future__ import annotations

import os
import urllib.request
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import cv2
import numpy as np

from emorec.errors import EmorecError
from emorec.files import atomic_path, sha256_file, sha256_setting
from emorec.registries import Registry

# A detector is a Detector subclass with a `name`, registered where it is defined.
DETECTORS: Registry[type] = Registry("detector")


class WeightsError(EmorecError):
    """A detector's weights file is missing or damaged."""


@dataclass
class Face:
    box: np.ndarray  # x1, y1, x2, y2 in frame pixels (float)
    score: float
    landmarks: np.ndarray | None = None  # (5, 2): right eye, left eye, nose, mouth right, mouth left

    @property
    def size(self) -> float:
        return float(min(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def search_scale(height: int, width: int, max_side: int | None, min_face: float | None = None,
                 smallest_face: int | None = None) -> float:
    """How much to shrink an image before a detector searches it (1.0: not at all): to at
    most `max_side` pixels on its long side and, given the `smallest_face` the detector
    still finds, until faces of `min_face` pixels are that small."""
    scale = min(1.0, max_side / max(height, width)) if max_side else 1.0
    if smallest_face and min_face and min_face > smallest_face:
        scale = min(scale, smallest_face / float(min_face))
    return scale


def detect_scaled(detector, image_bgr: np.ndarray, scale: float) -> list[Face]:
    """`detector` on the image shrunk by `scale`, its boxes and landmarks mapped back."""
    if scale >= 1.0:
        return detector.detect(image_bgr)
    h, w = image_bgr.shape[:2]
    small = cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    return [Face(f.box / scale, f.score, None if f.landmarks is None else f.landmarks / scale)
            for f in detector.detect(small)]


class Shrunk:
    """A detector searching each image shrunk as the real-time loop shrinks frames
    (`search_scale` with the detector's `smallest_face`): what the detectors stage scores
    beside the full-size search."""

    def __init__(self, detector, min_face: float):
        self.detector, self.min_face = detector, min_face

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        h, w = image_bgr.shape[:2]
        scale = search_scale(h, w, None, self.min_face, getattr(self.detector, "smallest_face", None))
        return detect_scaled(self.detector, image_bgr, scale)


def resolve_weights(path: str | os.PathLike | None, what: str, url: str | None = None,
                    sha256: str | None = None, allow_download: bool = False,
                    root: Path | None = None) -> Path:
    """The weights file at `path`, verified; downloaded first only when allowed."""
    sha256 = sha256_setting(sha256, f"params.yaml detectors.{what}.sha256")
    if not path:
        raise WeightsError(f"{what}: no weights path configured in params.yaml")
    p = Path(os.path.expanduser(str(path)))
    if not p.is_absolute() and root is not None:
        p = root / p
    if not p.exists():
        if not (allow_download and url):
            hint = f" (download it from {url})" if url else ""
            raise WeightsError(f"{what}: weights file {p} not found; place the file there{hint}, or set "
                               "its path in params.yaml" + (", or allow_download: true" if url else ""))
        try:
            with atomic_path(p) as tmp, urllib.request.urlopen(url, timeout=60) as response:
                tmp.write_bytes(response.read())
        except OSError as exc:
            raise WeightsError(f"{what}: could not download {url} to {p} ({exc}); place the file there "
                               "by hand") from exc
    if sha256:
        actual = sha256_file(p)
        if actual != sha256.lower():
            raise WeightsError(f"{what}: {p} is damaged or a different release: sha256 {actual}, "
                               f"expected {sha256}")
    return p


class Detector:
    name = "base"

    def detect(self, frame: np.ndarray) -> list[Face]:
        raise NotImplementedError


@DETECTORS.named
class HaarDetector(Detector):
    """OpenCV's frontal-face Haar cascade: always available, fast, no landmarks."""

    name = "haar"

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_face: int = 20, **_):
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise WeightsError(f"haar: cannot load the cascade bundled with OpenCV at {path}")
        self.scale_factor, self.min_neighbors, self.min_face = scale_factor, min_neighbors, min_face

    def detect(self, frame):
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY) if frame.ndim == 3 else frame
        boxes, _, weights = self.cascade.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_face, self.min_face), outputRejectLevels=True)
        return [Face(np.array([x, y, x + w, y + h], float), float(s))
                for (x, y, w, h), s in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).reshape(-1))]


@DETECTORS.named
class YuNetDetector(Detector):
    """OpenCV's YuNet (cv2.FaceDetectorYN): fast CNN detector with 5 landmarks.

    Its cost grows with the pixels it searches, and in real footage it still finds faces of
    about 10 px: `smallest_face` lets the real-time loop shrink each frame until the smallest
    face it classifies (`infer.min_face`) is that size (a 640x480 frame searched at 320x240;
    benchmarks/detect_scale.py, reports/detectors.md). Photos are searched at full size."""

    name = "yunet"

    def __init__(self, weights: str, score_threshold: float = 0.6, nms_threshold: float = 0.3,
                 top_k: int = 5000, url: str | None = None, sha256: str | None = None,
                 allow_download: bool = False, root: Path | None = None, smallest_face: int | None = 10, **_):
        if smallest_face is not None and (isinstance(smallest_face, bool) or not isinstance(smallest_face, int)
                                          or smallest_face < 4):
            raise EmorecError(f"detectors.yunet.smallest_face must be null or an integer of at least 4 "
                              f"(pixels), got {smallest_face!r}")
        self.smallest_face = smallest_face
        path = resolve_weights(weights, "yunet", url, sha256, allow_download, root)
        try:
            self.model = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold,
                                                   nms_threshold, top_k)
        except cv2.error as exc:
            raise WeightsError(f"yunet: cannot load {path} ({exc.msg.strip()})") from exc
        self.size = None

    def detect(self, frame):
        h, w = frame.shape[:2]
        if self.size != (w, h):
            self.model.setInputSize((w, h))
            self.size = (w, h)
        _, faces = self.model.detect(frame)
        out = []
        for f in [] if faces is None else faces:
            x, y, bw, bh = f[:4]
            out.append(Face(np.array([x, y, x + bw, y + bh], float), float(f[14]),
                            np.asarray(f[4:14], float).reshape(5, 2)))
        return out


def retinaface_priors(size: int, min_sizes=((16, 32), (64, 128), (256, 512)), steps=(8, 16, 32)) -> np.ndarray:
    """Anchor boxes (cx, cy, w, h), normalised, in the order RetinaFace's heads emit them."""
    anchors = []
    for k, step in enumerate(steps):
        fm = int(np.ceil(size / step))
        for i, j in product(range(fm), range(fm)):
            for m in min_sizes[k]:
                anchors.append([(j + 0.5) * step / size, (i + 0.5) * step / size, m / size, m / size])
    return np.array(anchors, np.float32)


def decode_retinaface(raw: np.ndarray, priors: np.ndarray, variances=(0.1, 0.2)):
    """raw (N, 16): box deltas, 2 class logits, 10 landmark deltas -> boxes, scores, landmarks
    (normalised to the network input)."""
    loc, logits, ldm = raw[:, :4], raw[:, 4:6], raw[:, 6:16]
    centres = priors[:, :2] + loc[:, :2] * variances[0] * priors[:, 2:]
    sizes = priors[:, 2:] * np.exp(loc[:, 2:] * variances[1])
    boxes = np.hstack([centres - sizes / 2, centres + sizes / 2])
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    scores = e[:, 1] / e.sum(axis=1)
    marks = priors[:, None, :2] + ldm.reshape(-1, 5, 2) * variances[0] * priors[:, None, 2:]
    return boxes, scores, marks


@DETECTORS.named
class RetinaFaceMobileNet(Detector):
    """RetinaFace, MobileNet-0.25 backbone, from ONNX (input 1x3xSxS BGR minus the means)."""

    name = "retinaface-mobilenet"
    MEAN = np.array([104.0, 117.0, 123.0], np.float32)

    def __init__(self, weights: str, score_threshold: float = 0.6, nms_threshold: float = 0.4,
                 input_size: int = 640, sha256: str | None = None, root: Path | None = None, **_):
        path = resolve_weights(weights, "retinaface-mobilenet", None, sha256, False, root)
        try:
            import onnxruntime as ort

            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name
        except Exception as exc:  # onnxruntime raises its own types for bad files
            raise WeightsError(f"retinaface-mobilenet: cannot load {path} ({str(exc)[:200]})") from exc
        self.size = input_size
        self.priors = retinaface_priors(input_size)
        self.score_threshold, self.nms_threshold = score_threshold, nms_threshold

    def detect(self, frame):
        h, w = frame.shape[:2]
        scale = self.size / max(h, w)
        rw, rh = int(round(w * scale)), int(round(h * scale))
        canvas = np.zeros((self.size, self.size, 3), np.float32)
        canvas[:rh, :rw] = cv2.resize(frame, (rw, rh)).astype(np.float32) - self.MEAN
        blob = canvas.transpose(2, 0, 1)[None]
        raw = self.session.run(None, {self.input_name: blob})[0][0]
        if raw.shape[0] != len(self.priors):
            raise WeightsError(f"retinaface-mobilenet: model emits {raw.shape[0]} anchors, expected "
                               f"{len(self.priors)} for {self.size}px input")
        boxes, scores, marks = decode_retinaface(raw, self.priors)
        keep = scores > self.score_threshold
        boxes, scores, marks = boxes[keep] * self.size / scale, scores[keep], marks[keep] * self.size / scale
        return nms_faces(boxes, scores, marks, self.score_threshold, self.nms_threshold)


def nms_faces(boxes, scores, marks, score_threshold, nms_threshold) -> list[Face]:
    if len(boxes) == 0:
        return []
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in boxes]
    idx = cv2.dnn.NMSBoxes(xywh, [float(s) for s in scores], score_threshold, nms_threshold)
    return [Face(boxes[i].astype(float), float(scores[i]), None if marks is None else marks[i].astype(float))
            for i in np.asarray(idx).reshape(-1)]


@DETECTORS.named
class RetinaFaceResNet(Detector):
    """The paper's detector: the `retina-face` package, ResNet-50 backbone (TensorFlow).

    The package builds its model with tf.keras, so `TF_USE_LEGACY_KERAS=1` must be set
    before TensorFlow is first imported (the `emorec infer` command does this); our own
    models use Keras 3 through `import keras` and are unaffected.
    """

    name = "retinaface"
    URL = "https://github.com/serengil/deepface_models/releases/download/v1.0/retinaface.h5"

    def __init__(self, weights: str | None = None, score_threshold: float = 0.9,
                 allow_download: bool = False, root: Path | None = None, **_):
        home = Path(os.environ.get("DEEPFACE_HOME", Path.home()))
        default = home / ".deepface" / "weights" / "retinaface.h5"
        target = Path(weights) if weights else default
        if not target.exists() and not allow_download:
            raise WeightsError(
                f"retinaface: ResNet-50 weights {target} not found and downloads are off; place "
                f"retinaface.h5 there (from {self.URL}) or set detectors.retinaface.allow_download: true")
        if weights and target != default:
            default.parent.mkdir(parents=True, exist_ok=True)
            if not default.exists():
                os.symlink(target.resolve(), default)
        if os.environ.get("TF_USE_LEGACY_KERAS") != "1":
            raise EmorecError("retinaface: set TF_USE_LEGACY_KERAS=1 before TensorFlow is imported "
                              "(the `emorec infer` command does this for you)")
        try:
            from retinaface import RetinaFace
        except ImportError as exc:
            raise EmorecError(f"retinaface: the retina-face package is not installed ({exc})") from exc
        try:
            self.model = RetinaFace.build_model()
        except Exception as exc:  # a damaged h5 raises OSError/ValueError from h5py
            raise WeightsError(f"retinaface: cannot load {default} ({type(exc).__name__}: {exc})") from exc
        self.api = RetinaFace
        self.score_threshold = score_threshold

    def detect(self, frame):
        found = self.api.detect_faces(frame, threshold=self.score_threshold, model=self.model)
        out = []
        for face in (found.values() if isinstance(found, dict) else []):
            lm = face.get("landmarks", {})
            marks = [lm.get(k) for k in ("right_eye", "left_eye", "nose", "mouth_right", "mouth_left")]
            out.append(Face(np.array(face["facial_area"], float), float(face["score"]),
                            np.array(marks, float) if all(m is not None for m in marks) else None))
        return out


def create(name: str, settings: dict | None = None, root: Path | None = None) -> Detector:
    """Build detector `name` with its block from params.yaml (`detectors.<name>`)."""
    return DETECTORS.get(name)(root=root, **(settings or {}))
