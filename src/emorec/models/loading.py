"""Loading trained models: always with Keras safe mode on.

Nothing inside a file decides how it is loaded: a file holding a `Lambda` (or any other
serialized code) is refused with an EmorecError naming it, and its code never runs.
Layers an architecture needs are registered classes of ours (`ModelSpec.custom_layers`),
known to Keras before a file is read."""

from __future__ import annotations

import zipfile
from pathlib import Path

from emorec import files, models
from emorec.errors import EmorecError
from emorec.models import losses, optimizers


def register_custom_layers() -> None:
    """Every registered architecture's own layer classes, known to Keras' deserializer."""
    for _, spec in models.MODELS.items():
        if spec.custom_layers is not None:
            spec.custom_layers()


def load_file(path):
    """A .keras file -> Keras model, safe mode on whatever the file says about itself."""
    import keras

    # Keras lets a process-wide `enable_unsafe_deserialization()` (any library may call it)
    # override the argument; an explicit scope puts safe mode back for this load.
    from keras.src.saving.serialization_lib import SafeModeScope

    path = Path(path)
    if not path.is_file():
        raise EmorecError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise EmorecError(f"{path}: not a Keras .keras archive")
    optimizers.rectified_adam_class()   # registered, so compiled models load
    losses.smoothed_crossentropy_class()
    register_custom_layers()
    try:
        with SafeModeScope(True):
            return keras.models.load_model(path, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "lambda" in str(exc).lower():
            raise EmorecError(
                f"{path}: refused: the model file holds serialized Python code (a Lambda layer), "
                "which emorec never loads; rebuild the model from the model registry") from None
        raise EmorecError(f"{path}: not a loadable Keras model ({str(exc)[:300]})") from None


def load_model(model_dir: Path):
    """A trained run's folder (model.keras + run.json) -> (model, run metadata)."""
    model_path = model_dir / "model.keras"
    meta_path = model_dir / "run.json"
    if not model_path.exists() or not meta_path.exists():
        raise EmorecError(f"{model_dir}: no trained model (model.keras and run.json); run the "
                          "train stage first")
    try:
        model = load_file(model_path)
    except EmorecError:
        raise
    except Exception as exc:  # Keras raises many types for a damaged file
        raise EmorecError(f"{model_path}: cannot load model ({type(exc).__name__}: {exc})") from exc
    return model, files.read_json(meta_path)
