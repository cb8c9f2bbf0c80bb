"""The one object Python users call: faces and their emotions from an image.

    from emorec import EmotionRecognizer
    rec = EmotionRecognizer(model="models:/emorec-fer2013@champion", detector="yunet")
    for face in rec.predict("photo.jpg"):
        print(face.box, face.label, face.score)

The real-time loop, the `infer` stage and the benchmarks are built on it, so what a user
gets from Python is what the pipeline measured."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emorec.config import load_params, project_root
from emorec.errors import EmorecError
from emorec.inference import detectors
from emorec.inference.classifier import DEFAULT_MARGIN, Classifier, crop_face

DEFAULT_MODEL = "models:/emorec-fer2013@champion"


@dataclass
class FacePrediction:
    """One face: its box (x1, y1, x2, y2 in image pixels), 5-point landmarks when the
    detector gives them, the probability of every class, the top class and its probability."""

    box: tuple[float, float, float, float] | None
    landmarks: list[list[float]] | None
    probabilities: dict[str, float]
    label: str
    score: float
    detector_score: float | None = None

    def to_dict(self) -> dict:
        return {"box": self.box, "landmarks": self.landmarks, "probabilities": self.probabilities,
                "label": self.label, "score": self.score, "detector_score": self.detector_score}


class EmotionRecognizer:
    """A face detector and an emotion classifier, ready to call.

    model: a registry URI (`models:/emorec-<dataset>@champion`, tracked in the project's
      MLflow store unless MLFLOW_TRACKING_URI says otherwise), a `.keras` file, or an
      `.onnx` / `.tflite` export with `preprocessing.json` beside it.
    tta: None, "flip" or "ten": test-time views of each face averaged (more accurate, slower;
      `Classifier`).
    detector: a registered detector name (`emorec.inference.detectors.DETECTORS`); its
      settings come from `detector_settings`, else from the project's params.yaml.
    """

    def __init__(self, model: str = DEFAULT_MODEL, detector: str = "yunet", *,
                 detector_settings: dict | None = None, margin: float = DEFAULT_MARGIN, align: bool = False,
                 min_face: int = 20, threads: int | None = 1, root: Path | str | None = None,
                 max_detect_side: int = 1920, tta: str | None = None):
        self.root = Path(root) if root is not None else project_root()
        params = _project_params(self.root)
        if detector_settings is None:
            detector_settings = dict(((params or {}).get("detectors") or {}).get(detector) or {})
        self.detector_name = detector
        self.detector = detectors.create(detector, detector_settings, self.root)
        if model.startswith(("models:/", "runs:/")):
            from emorec.experiments import tracking

            experiment = ((params or {}).get("mlflow") or {}).get("experiment", "emorec")
            tracking.configure(self.root, experiment)
        self.model = model
        self.classifier = Classifier(model, self.root, threads, tta)
        self.margin, self.align, self.min_face = margin, align, min_face
        self.max_detect_side = max_detect_side

    @classmethod
    def from_parts(cls, detector, classifier, *, margin: float = DEFAULT_MARGIN, align: bool = False,
                   min_face: int = 20, detector_name: str = "custom", model: str = "custom",
                   max_detect_side: int = 1920):
        """A recognizer around a detector (`.detect(bgr) -> [Face]`) and a classifier
        (`.classes`, `.predict_faces(rgb crops) -> probabilities`) built elsewhere."""
        rec = cls.__new__(cls)
        rec.root, rec.detector_name, rec.detector, rec.model = None, detector_name, detector, model
        rec.classifier, rec.margin, rec.align, rec.min_face = classifier, margin, align, min_face
        rec.max_detect_side = max_detect_side
        return rec

    @classmethod
    def from_params(cls, params: dict, root: Path, model: str | None = None,
                    detector: str | None = None, overrides: dict | None = None) -> "EmotionRecognizer":
        """The recognizer the `infer:` block of params.yaml describes (`overrides`: infer keys)."""
        cfg = {**(params.get("infer") or {}), **{k: v for k, v in (overrides or {}).items() if v is not None}}
        name = detector or cfg["detector"]
        from emorec.config import resolve_model

        return cls(resolve_model(str(model or cfg["model"]), root), name,
                   detector_settings=dict((params.get("detectors") or {}).get(name) or {}),
                   margin=cfg.get("margin", DEFAULT_MARGIN), align=bool(cfg.get("align", False)),
                   min_face=cfg.get("min_face", 20), threads=cfg.get("classifier_threads", 1), root=root,
                   max_detect_side=cfg.get("max_detect_side", 1920), tta=cfg.get("tta"))

    @property
    def classes(self) -> tuple[str, ...]:
        return self.classifier.classes

    # -- the steps, for loops that time them -------------------------------------------
    def detect(self, image_bgr: np.ndarray, shrink: bool = False) -> list[detectors.Face]:
        """Faces at least `min_face` pixels on their short side. An image whose long side is
        over `max_detect_side` is searched at that size (a 48-megapixel photo would take
        seconds and gigabytes). With `shrink` (the real-time loop's frames), it is shrunk
        further, until faces of `min_face` pixels are the smallest the detector still finds
        (its `smallest_face`): yunet searches a 640x480 webcam frame at 320x240. Boxes are
        mapped back to the original pixels."""
        h, w = image_bgr.shape[:2]
        smallest = getattr(self.detector, "smallest_face", None) if shrink else None
        scale = detectors.search_scale(h, w, self.max_detect_side, self.min_face, smallest)
        found = detectors.detect_scaled(self.detector, image_bgr, scale)
        return [f for f in found if f.size >= self.min_face]

    def crops(self, image_bgr: np.ndarray, faces: list) -> tuple[list[np.ndarray], list]:
        """RGB crops of the faces (with margin, eyes levelled if `align`), and the faces kept."""
        crops, kept = [], []
        for f in faces:
            crop = crop_face(image_bgr, f.box, self.margin, f.landmarks, self.align)
            if crop is not None:
                crops.append(crop)
                kept.append(f)
        return crops, kept

    def classify(self, crops_rgb: list[np.ndarray]) -> np.ndarray:
        """(N, classes) probabilities for uint8 RGB crops, one batch."""
        return self.classifier.predict_faces(crops_rgb)

    # -- the front door ------------------------------------------------------------------
    def predict(self, image) -> list[FacePrediction]:
        """Every face of one image (a path, or a BGR uint8 array as OpenCV reads it)."""
        frame = _read_image(image)
        crops, kept = self.crops(frame, self.detect(frame))
        probs = self.classify(crops)
        return [self.prediction(p, f) for p, f in zip(probs, kept)]

    def predict_faces(self, crops_rgb: list[np.ndarray]) -> list[FacePrediction]:
        """Faces already cut out (uint8 RGB, any size): one prediction each, no box."""
        return [self.prediction(p) for p in self.classify(list(crops_rgb))]

    def prediction(self, probs: np.ndarray, face=None) -> FacePrediction:
        top = int(np.argmax(probs))
        box = tuple(round(float(v), 1) for v in face.box) if face is not None else None
        marks = (np.round(face.landmarks, 1).tolist()
                 if face is not None and face.landmarks is not None else None)
        return FacePrediction(box, marks, {c: float(p) for c, p in zip(self.classes, probs)},
                              self.classes[top], float(probs[top]),
                              float(face.score) if face is not None else None)


def _project_params(root: Path) -> dict | None:
    return load_params(root / "params.yaml") if (root / "params.yaml").exists() else None


def _read_image(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim not in (2, 3):
            raise EmorecError(f"image array must be uint8 HxW or HxWx3 (BGR), got {image.dtype} {image.shape}")
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image
    path = Path(image)
    if not path.is_file():
        raise EmorecError(f"{path}: image not found")
    frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if frame is None:
        raise EmorecError(f"{path}: not a readable image")
    return frame
