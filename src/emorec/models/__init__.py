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
    safe_mode: bool = True             # False only where the architecture holds Lambda layers
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


def saved_model_name(path) -> str | None:
    """The architecture name stored in a .keras file's config (the Keras model name)."""
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return json.loads(zf.read("config.json")).get("config", {}).get("name")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def load_file(path):
    """Load a .keras file with safe mode on, except for the architectures registered with
    safe_mode=False (vit-keras' Lambda layers) - that exception is confined to them."""
    import keras

    from emorec import optimizers

    optimizers.rectified_adam_class()   # registered, so compiled models load
    name = saved_model_name(path)
    unsafe = name in _REGISTRY_NAMES_UNSAFE()
    if unsafe:
        import vit_keras.layers  # noqa: F401  registers ClassToken, TransformerBlock, ...
    return keras.models.load_model(path, safe_mode=not unsafe)


def _REGISTRY_NAMES_UNSAFE() -> set[str]:  # noqa: N802
    _load_builtin()
    return {n for n, s in _REGISTRY.items() if not s.safe_mode}
