"""One registry of model builders: name -> function(input_shape, num_classes, **hparams).

Training code never imports a model module directly; it asks the registry, so adding
an architecture is one module plus one `register` call.
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


def build(name: str, input_shape: tuple[int, int, int], num_classes: int, **hparams):
    """Build an uncompiled Keras model, checking the input size the architecture needs."""
    spec = get(name)
    size = min(input_shape[0], input_shape[1])
    if size < spec.min_input_size:
        raise EmorecError(
            f"model {name!r} needs inputs of at least {spec.min_input_size}x{spec.min_input_size} "
            f"pixels but got {input_shape[0]}x{input_shape[1]}; set an input size in params.yaml"
        )
    return spec.build(input_shape=input_shape, num_classes=num_classes, **hparams)


def _load_builtin() -> None:
    # Imported lazily so that `import emorec.models` does not import Keras.
    from emorec.models import cnn  # noqa: F401
