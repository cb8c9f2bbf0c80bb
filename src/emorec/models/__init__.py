"""One registry of model builders: name -> function(input_shape, num_classes, weights, **arch).

Training code never imports a model module directly; it asks the registry, so adding
an architecture is one module of this package ending in `register(ModelSpec(...))` plus
its `models.<name>` block in params.yaml: the registry finds the module by itself. Models built on a pretrained
backbone are two nested parts, `features` (input scaling + backbone) and `head`, so the
trainer can compute frozen features once and fit the head alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from emorec.errors import EmorecError
from emorec.registries import Registry


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


# Every module of this package except these is a model module that registers its builders.
MODELS: Registry[ModelSpec] = Registry("model", __name__, skip=("parts", "weights", "optimizers", "losses", "loading"))


def register(spec: ModelSpec) -> ModelSpec:
    return MODELS.register(spec.name, spec)


def available() -> list[str]:
    return MODELS.available()


def get(name: str) -> ModelSpec:
    return MODELS.get(name)


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
    """Build an uncompiled Keras model. `weights` is an emorec.models.weights.ResolvedWeights or
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
