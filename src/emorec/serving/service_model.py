"""The registered model as MLflow's own serving runs it: detector and classifier in one
pyfunc, so `mlflow models serve -m models:/emorec-<dataset>@champion` answers images.

Request (POST /invocations), one row per image, base64 (a browser data URL is accepted):

    {"dataframe_split": {"columns": ["image"], "data": [["<base64 jpeg/png/webp>"]]}}

Response: {"predictions": [{"faces": [{box, landmarks, probabilities, label, score,
detector_score}, ...], "width": W, "height": H}, ...]}, one entry per row.

The pyfunc is logged as *code* (MLflow's models-from-code, `mlflow_entry.py`), not as a
pickle, and the classifier inside it is the `.keras` file loaded with safe mode on. emorec's
own loaders never run the pyfunc: they take the `.keras` file out of its artifacts."""

from __future__ import annotations

from pathlib import Path

# the infer: keys the served pyfunc carries beside its detector (register tags them, to tell
# a re-packaged champion from an unchanged one)
SERVING_KEYS = ("margin", "align", "min_face", "max_detect_side")

try:  # MLflow is installed wherever this module is used; the fallback keeps imports light
    from mlflow.pyfunc import PythonModel
except ImportError:  # pragma: no cover
    PythonModel = object

ENTRY = Path(__file__).with_name("mlflow_entry.py")
PACKAGE = Path(__file__).resolve().parents[1]          # src/emorec: shipped as the model's code
MAX_PIXELS = 40_000_000
# The distributions the pyfunc imports, pinned to what logged it (no slow inference of them).
REQUIREMENTS = ("mlflow", "keras", "tensorflow", "opencv-contrib-python-headless", "pillow", "numpy",
                "pandas", "pyyaml", "filelock", "scikit-learn")


class EmotionService(PythonModel):
    """Base64 images in a string column `image` -> the faces in each."""

    def load_context(self, context):
        from emorec.inference import detectors
        from emorec.inference.classifier import DEFAULT_MARGIN, Classifier
        from emorec.recognizer import EmotionRecognizer

        config = dict(context.model_config or {})
        settings = dict(config.get("detector_settings") or {})
        if "detector_weights" in context.artifacts:
            settings["weights"] = context.artifacts["detector_weights"]
        detector = detectors.create(config["detector"], settings, Path(context.artifacts["keras_model"]).parent)
        classifier = Classifier(context.artifacts["keras_model"])    # preprocessing.json lies beside it
        self.recognizer = EmotionRecognizer.from_parts(
            detector, classifier, margin=float(config.get("margin", DEFAULT_MARGIN)), align=bool(config.get("align", False)),
            min_face=int(config.get("min_face", 20)), detector_name=config["detector"],
            model=config.get("model", "emorec"), max_detect_side=int(config.get("max_detect_side", 1920)))

    def predict(self, context, model_input, params=None):
        from mlflow.exceptions import MlflowException

        from emorec.serving.app import BadRequest, b64, decode_image

        if "image" not in getattr(model_input, "columns", ()):
            raise MlflowException.invalid_parameter_value('send a string column "image" (base64 of an image)')
        out = []
        for row, text in enumerate(model_input["image"].tolist()):
            try:
                image = decode_image(b64(text, "image"), MAX_PIXELS)
            except BadRequest as exc:
                raise MlflowException.invalid_parameter_value(f"row {row}: {exc.message}") from None
            faces = self.recognizer.predict(image)
            out.append({"faces": [f.to_dict() for f in faces], "width": int(image.shape[1]),
                        "height": int(image.shape[0]), "temperature": self.recognizer.classifier.temperature})
        return out


def requirements() -> list[str]:
    from importlib import metadata

    pins = []
    for name in REQUIREMENTS:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def serving_config(detector: str, detector_settings: dict | None, infer: dict) -> dict:
    """What the served pyfunc carries besides its files: the detector, its settings (paths
    and download switches left out: the weights travel as an artifact) and the crop keys.
    `register` tags it on every version to tell a re-packaged champion from an unchanged one."""
    settings = {k: v for k, v in (detector_settings or {}).items() if k not in ("weights", "url", "allow_download")}
    return {"detector": detector, "detector_settings": settings, **{k: infer[k] for k in SERVING_KEYS if k in infer}}


def log_service_model(keras_file: Path, spec: dict, detector: str, detector_settings: dict, *,
                      infer: dict, name: str = "service"):
    """Log the pyfunc (detector inside) to the active MLflow run; returns its ModelInfo.

    The detector's weights file goes into the artifacts (its sha256 setting still checks it
    at load); the detector's other settings and the crop settings go into `model_config`."""
    import tempfile

    import mlflow
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from emorec import files

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        artifacts = {"keras_model": str(keras_file)}
        files.write_json(tmp / "preprocessing.json", spec)
        artifacts["preprocessing"] = str(tmp / "preprocessing.json")
        weights = (detector_settings or {}).get("weights")
        if weights:
            artifacts["detector_weights"] = str(weights)
        config = serving_config(detector, detector_settings, infer)
        return mlflow.pyfunc.log_model(
            name=name, python_model=str(ENTRY), artifacts=artifacts, model_config=config,
            code_paths=[str(PACKAGE)], pip_requirements=requirements(),
            signature=ModelSignature(inputs=Schema([ColSpec("string", "image")])))
