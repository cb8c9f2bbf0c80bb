"""The emotion classifier behind every inference path: a registered model, a .keras file
or an ONNX / TFLite export, with the input spec and class names that travel with it; and
the face crop it is fed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from emorec import files
from emorec.data.preprocess import InputSpec, to_model_input
from emorec.errors import EmorecError
from emorec.evaluation.calibration import scaled as calibrate
from emorec.evaluation.calibration import views as tta_views

TTA_KINDS = (None, "flip", "ten")


# ----------------------------------------------------------------------------- model source
class Classifier:
    """A trained model from the registry (`models:/name@alias`), a `.keras` file, or an
    ONNX / TFLite export; the input spec and class names travel with it.

    Keras models predict through their compiled predict step (`predict_on_batch`), about
    8x faster than an eager call on a one-face batch. Exports run on `threads` intra-op
    threads (default 1; 0 or None: the runtime's default), which leaves the other cores to
    the detector.

    `tta` averages test-time views of each face (evaluate's views: "flip" = 2, "ten" = 10)
    in the one batch, each view temperature-scaled before the average. It costs classifier
    time per face: benchmarks/realtime_fps.py measures it (`--settings tta=flip`)."""

    def __init__(self, source: str, root: Path | None = None, threads: int | None = 1, tta: str | None = None):
        if tta not in TTA_KINDS:
            raise EmorecError(f"tta must be null, 'flip' or 'ten', got {tta!r}")
        self.source, self.tta = source, tta
        if source.startswith("models:/") or source.startswith("runs:/"):
            self._from_mlflow(source)
        else:
            path = Path(source)
            if not path.is_absolute() and root is not None:
                path = root / path
            if not path.exists():
                raise EmorecError(f"model {path} not found")
            self.spec, self.temperature = self._spec_beside(path)
            suffix = path.suffix.lower()
            if suffix == ".keras":
                from emorec.models import loading

                try:
                    model = loading.load_file(path)
                except Exception as exc:
                    raise EmorecError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
                self._predict = model.predict_on_batch
            elif suffix in (".onnx", ".tflite"):
                from emorec.inference.export import Runner

                try:
                    runner = Runner("onnx" if suffix == ".onnx" else "tflite_float32", path, threads)
                except Exception as exc:
                    raise EmorecError(f"{path}: cannot load model ({type(exc).__name__}: {exc})") from exc
                self._predict = runner
            else:
                raise EmorecError(f"{path}: unsupported model file; use .keras, .onnx or .tflite")

    def _from_mlflow(self, uri: str) -> None:
        import mlflow

        from emorec.models import loading

        try:
            # a registered version is the served pyfunc: its .keras file and preprocessing.json
            # are among its artifacts (the pyfunc's own code is never run here)
            local = Path(mlflow.artifacts.download_artifacts(uri))
            inside = sorted(local.rglob("preprocessing.json"))
            if inside:
                self.spec, self.temperature = read_spec(files.read_json(inside[0]), str(inside[0].name))
            else:
                info = mlflow.models.get_model_info(uri)
                self.spec, self.temperature = read_spec(
                    mlflow.artifacts.load_dict(f"runs:/{info.run_id}/preprocessing.json"), "preprocessing.json")
            found = sorted(local.rglob("*.keras"))
            if not found:
                raise FileNotFoundError(f"{uri}: no .keras file among the logged artifacts")
            model = loading.load_file(found[0])
        except EmorecError:
            raise
        except Exception as exc:
            raise EmorecError(f"cannot load {uri} from {mlflow.get_tracking_uri()} ({type(exc).__name__}: "
                              f"{str(exc)[:300]}); run `dvc repro` or pass a model file with --model") from exc
        self._predict = model.predict_on_batch

    @staticmethod
    def _spec_beside(path: Path) -> tuple[InputSpec, float]:
        for candidate in (path.parent / "preprocessing.json", path.parent / "run.json"):
            if candidate.exists():
                return read_spec(files.read_json(candidate), str(candidate))
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
        views = tta_views(batch.reshape(*batch.shape[:3], -1), self.tta)
        probs = np.asarray(self._predict(to_model_input(np.concatenate(views), self.spec)), np.float32)
        probs = calibrate(probs, self.temperature).reshape(len(views), len(batch), -1)
        return probs.mean(axis=0)


def read_spec(data: dict, where: str) -> tuple[InputSpec, float]:
    """The input spec and the softmax temperature (1.0: uncalibrated) a model travels with."""
    temperature = data.get("temperature", 1.0)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0.05 <= temperature <= 20:
        raise EmorecError(f"{where}: temperature must be a number from 0.05 to 20, got {temperature!r}")
    return InputSpec.from_dict(data.get("input_spec", data)), float(temperature)


# ----------------------------------------------------------------------------- face crops
# The square around a detector's box, grown by nothing: chosen on labelled FER2013 + AffectNet
# validation faces through the real-time path (benchmarks/crop_margin.py, 2026-11-27: the combined
# champion's macro-F1 0.630 at 0.0 against 0.517 at the old 0.15). params.yaml's infer.margin
# sets it for the pipeline, the service and the CLI; this is the default of the Python API.
DEFAULT_MARGIN = 0.0


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


