"""One registry of model builders: name -> function(input_shape, num_classes, weights, **arch).

Training code never imports a model module directly; it asks the registry, so adding
an architecture is one module plus one `register` call. Models built on a pretrained
backbone are two nested parts, `features` (input scaling + backbone) and `head`, so the
trainer can compute frozen features once and fit the head alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from emorec.errors import EmorecError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., "object"]
    min_input_size: int = 1
    channels: int | None = None        # None: the dataset's; 3: grey is replicated
    patch_size: int | None = None      # input size must be a multiple of it (ViT)
    pretrainable: bool = False         # `weights: imagenet` is meaningful
    custom_layers: Callable[[], None] | None = None  # registers the architecture's own layer classes
    backend_neutral: bool = True       # pure Keras 3: also runs with KERAS_BACKEND=jax/torch
    description: str = ""


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.name] = spec
    return spec


def available() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get(name: str) -> ModelSpec:
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise EmorecError(
            f"unknown model {name!r} in params.yaml; known models: {', '.join(available())}"
        ) from None


def check_input(name: str, input_shape: tuple[int, int, int]) -> None:
    """Refuse input sizes the architecture cannot take, before anything is built."""
    spec = get(name)
    size = min(input_shape[0], input_shape[1])
    if size < spec.min_input_size:
        raise EmorecError(
            f"model {name!r} needs inputs of at least {spec.min_input_size}x{spec.min_input_size} "
            f"pixels but got {input_shape[0]}x{input_shape[1]}; set models.{name}.input_size in "
            "params.yaml (faces are resized to it)"
        )
    if spec.patch_size and (input_shape[0] % spec.patch_size or input_shape[1] % spec.patch_size):
        raise EmorecError(
            f"model {name!r} cuts {spec.patch_size}x{spec.patch_size} patches, so its input size "
            f"must be a multiple of {spec.patch_size}; got {input_shape[0]}x{input_shape[1]}"
        )
    if spec.channels and input_shape[-1] != spec.channels:
        raise EmorecError(f"model {name!r} takes {spec.channels}-channel input, got {input_shape[-1]}")


def build(name: str, input_shape: tuple[int, int, int], num_classes: int, weights=None, **arch):
    """Build an uncompiled Keras model. `weights` is an emorec.weights.ResolvedWeights or
    None (scratch)."""
    spec = get(name)
    check_input(name, input_shape)
    if weights is not None and weights.pretrained and not spec.pretrainable:
        raise EmorecError(f"model {name!r} has no pretrained weights; set models.{name}.weights: null")
    kwargs = dict(arch)
    if spec.pretrainable:
        kwargs["weights"] = weights
    return spec.build(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)


def input_channels(name: str, data_channels: int) -> int:
    return get(name).channels or data_channels


def _load_builtin() -> None:
    # Imported lazily so that `import emorec.models` does not import Keras.
    from emorec.models import applications, cnn, custom_mobilenet, resnet18, vit  # noqa: F401


def register_custom_layers() -> None:
    """Every registered architecture's own layer classes, known to Keras' deserializer."""
    _load_builtin()
    for spec in _REGISTRY.values():
        if spec.custom_layers is not None:
            spec.custom_layers()


def load_file(path):
    """Load a .keras file with Keras safe mode on, always.

    Nothing inside the file decides how it is loaded: a file that holds a `Lambda` (or any
    other serialized code) is refused with an EmorecError naming it, and its code never runs.
    Our own layers (ViT's `ExtractToken`, vit-keras' blocks) are registered classes, not code
    from the file."""
    import zipfile
    from pathlib import Path

    import keras

    from emorec import optimizers

    path = Path(path)
    if not path.is_file():
        raise EmorecError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise EmorecError(f"{path}: not a Keras .keras archive")
    optimizers.rectified_adam_class()   # registered, so compiled models load
    register_custom_layers()
    # Keras lets a process-wide `enable_unsafe_deserialization()` (any library may call it)
    # override the argument; an explicit scope puts safe mode back for this load.
    from keras.src.saving.serialization_lib import SafeModeScope

    try:
        with SafeModeScope(True):
            return keras.models.load_model(path, safe_mode=True)
    except ValueError as exc:
        if "safe_mode" in str(exc) or "lambda" in str(exc).lower():
            raise EmorecError(
                f"{path}: refused: the model file holds serialized Python code (a Lambda layer), "
                "which emorec never loads; rebuild the model from the model registry") from None
        raise EmorecError(f"{path}: not a loadable Keras model ({str(exc)[:300]})") from None
