"""The training recipe beyond the paper's: augmentation of every batch inside the graph,
label smoothing, weight decay and warm-up, written with Keras 3 ops only so the same
recipe trains on TensorFlow (the CPU default run) and on JAX (the GPU profile).

Augmentation runs in a training-only wrapper around the classifier: `fit` sees
`augmented(model)`, the saved and exported model is the classifier alone, so nothing
random ever reaches inference, exports or Grad-CAM.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from emorec.errors import EmorecError


@dataclass(frozen=True)
class BatchAugment:
    """Per-image random changes, drawn afresh for every batch (params: train.batch_augmentation)."""

    horizontal_flip: bool = True
    rotation_degrees: float = 0.0
    translation: float = 0.0          # fraction of the side, each direction (pad-and-crop)
    zoom: float = 0.0                 # +- fraction
    erasing: float = 0.0              # probability of blanking one random box (<= 1/4 of the face)
    downscale: float = 0.0            # probability of shrinking the face to 12-32 px and back
    downscale_sizes: tuple[int, ...] = (12, 16, 24, 32)
    brightness: float = 0.0           # +- added to [0, 1] pixels
    contrast: float = 0.0             # +- fraction around the image mean
    noise: float = 0.0                # maximum std of added Gaussian noise

    @classmethod
    def from_params(cls, params: dict | None) -> "BatchAugment | None":
        if not params:
            return None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise EmorecError(f"params.yaml: train.batch_augmentation: unknown key(s) {unknown}; "
                              f"known: {sorted(known)}")
        cfg = cls(**{k: (tuple(v) if k == "downscale_sizes" else v) for k, v in params.items()})
        for name in ("erasing", "downscale"):
            if not 0 <= getattr(cfg, name) <= 1:
                raise EmorecError(f"params.yaml: train.batch_augmentation.{name} is a probability (0-1)")
        for name in ("translation", "zoom", "brightness", "contrast", "noise"):
            if not 0 <= getattr(cfg, name) < 1:
                raise EmorecError(f"params.yaml: train.batch_augmentation.{name} must be in [0, 1)")
        if any(int(s) < 4 for s in cfg.downscale_sizes):
            raise EmorecError("params.yaml: train.batch_augmentation.downscale_sizes must be >= 4 px")
        return cfg

    @property
    def warps(self) -> bool:
        """Whether it moves pixels (flip, rotation, zoom, translation): with host-side warps
        (`online_augmentation`) that is the host's job, and the graph adds only the rest."""
        return bool(self.horizontal_flip or self.rotation_degrees or self.zoom or self.translation)


def augmented(model, augment: BatchAugment, seed: int):
    """A training wrapper: random augmentation (active only in training) -> `model`.
    Both share weights; save `model`, fit the wrapper."""
    import keras

    size, _, channels = model.input_shape[1:]
    stages = []
    RandomAffine, RandomDownscale, PhotometricJitter, RandomBoxErasing = layer_classes()
    if augment.horizontal_flip or augment.rotation_degrees or augment.zoom or augment.translation:
        stages.append(RandomAffine(augment.horizontal_flip, augment.rotation_degrees, augment.zoom,
                                   augment.translation, seed=seed + 1))
    if augment.downscale:
        stages.append(RandomDownscale(augment.downscale, augment.downscale_sizes, seed=seed + 4))
    if augment.brightness or augment.contrast or augment.noise:
        stages.append(PhotometricJitter(augment.brightness, augment.contrast, augment.noise, seed=seed + 5))
    if augment.erasing:
        stages.append(RandomBoxErasing(augment.erasing, seed=seed + 6))
    inputs = keras.Input(shape=(size, size, channels), name="image")
    x = inputs
    for stage in stages:
        x = stage(x)
    return keras.Model(inputs, model(x), name=f"{model.name}_augmented")


def _layer_classes():
    import keras
    from keras import ops

    def bilinear_sample(x, sx, sy):
        """x (N,H,W,C) read at float source coordinates sx, sy (N,H,W); outside -> edge."""
        h, w, c = x.shape[1], x.shape[2], x.shape[3]
        sx = ops.clip(sx, 0.0, w - 1.0)
        sy = ops.clip(sy, 0.0, h - 1.0)
        x0, y0 = ops.floor(sx), ops.floor(sy)
        fx, fy = (sx - x0)[..., None], (sy - y0)[..., None]
        x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
        x1, y1 = ops.minimum(x0 + 1, w - 1), ops.minimum(y0 + 1, h - 1)
        flat = ops.reshape(x, (-1, h * w, c))

        def at(yy, xx):
            index = ops.reshape(yy * w + xx, (-1, h * w, 1))
            return ops.reshape(ops.take_along_axis(flat, ops.repeat(index, c, axis=2), axis=1), (-1, h, w, c))

        fx, fy = ops.cast(fx, x.dtype), ops.cast(fy, x.dtype)
        top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx
        bottom = at(y1, x0) * (1 - fx) + at(y1, x1) * fx
        return top * (1 - fy) + bottom * fy

    class RandomAffine(keras.layers.Layer):
        """Flip, rotation, zoom and translation as ONE affine warp per image (bilinear,
        edges repeated), sampled with gathers. Keras' own RandomRotation/Zoom/Translation
        mark a model as not XLA-compilable, which leaves training op-by-op (the GPU
        profile's first epoch did not end in 220 s on an H200), and TensorFlow's image
        transform op has no XLA kernel; gathers compile on every backend."""

        def __init__(self, flip=True, rotation_degrees=0.0, zoom=0.0, translation=0.0, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.flip, self.rotation_degrees = bool(flip), float(rotation_degrees)
            self.zoom, self.translation = float(zoom), float(translation)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            h, w = x.shape[1], x.shape[2]
            u = keras.random.uniform((ops.shape(x)[0], 5), minval=-1.0, maxval=1.0, seed=self.seed_generator)
            angle = u[:, 0] * self.rotation_degrees * 3.14159265 / 180
            scale = 1 + u[:, 1] * self.zoom                       # > 1 zooms in
            mirror = ops.where(u[:, 2] < 0, -1.0, 1.0) if self.flip else ops.ones_like(u[:, 2])
            tx, ty = u[:, 3] * self.translation * w, u[:, 4] * self.translation * h
            cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
            cx, cy = (w - 1) / 2, (h - 1) / 2
            # output pixel (x, y) is read at input C + R(angle) diag(mirror, 1) / scale ((x, y) - C) + t
            a0, a1, b0, b1 = mirror * cos, -sin, mirror * sin, cos
            a2, b2 = cx - a0 * cx - a1 * cy + tx, cy - b0 * cx - b1 * cy + ty
            cols = ops.arange(w, dtype="float32")[None, None, :]
            rows = ops.arange(h, dtype="float32")[None, :, None]
            sx = a0[:, None, None] * cols + a1[:, None, None] * rows + a2[:, None, None]
            sy = b0[:, None, None] * cols + b1[:, None, None] * rows + b2[:, None, None]
            return bilinear_sample(x, sx, sy)

        def compute_output_shape(self, input_shape):
            return input_shape

    class RandomDownscale(keras.layers.Layer):
        """Faces as real time sees them: with probability p, shrink to one of `sizes` px
        (area-averaged) and scale back up. Every size is computed and one chosen per image,
        so shapes stay static under XLA."""

        def __init__(self, probability, sizes=(12, 16, 24, 32), seed=None, **kwargs):
            super().__init__(**kwargs)
            self.probability, self.sizes = float(probability), tuple(int(s) for s in sizes)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            h, w = x.shape[1], x.shape[2]
            views = [x] + [ops.image.resize(ops.image.resize(x, (s, s), interpolation="bilinear",
                                                             antialias=True), (h, w), interpolation="bilinear")
                           for s in self.sizes]
            u = keras.random.uniform((ops.shape(x)[0], 2), seed=self.seed_generator)
            pick = ops.where(u[:, 0] < self.probability,
                             1 + ops.minimum(ops.floor(u[:, 1] * len(self.sizes)), len(self.sizes) - 1), 0)
            onehot = ops.one_hot(ops.cast(pick, "int32"), len(views), dtype=x.dtype)
            return ops.sum(ops.stack(views, axis=1) * onehot[:, :, None, None, None], axis=1)

        def compute_output_shape(self, input_shape):
            return input_shape

    class PhotometricJitter(keras.layers.Layer):
        """Per-image brightness shift, contrast about the image mean and Gaussian noise."""

        def __init__(self, brightness=0.0, contrast=0.0, noise=0.0, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.brightness, self.contrast, self.noise = float(brightness), float(contrast), float(noise)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            n = ops.shape(x)[0]
            u = keras.random.uniform((n, 3), minval=-1.0, maxval=1.0, seed=self.seed_generator)
            mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
            x = (x - mean) * (1 + self.contrast * u[:, 0, None, None, None]) + mean
            x = x + self.brightness * u[:, 1, None, None, None]
            if self.noise:
                std = self.noise * (u[:, 2, None, None, None] + 1) / 2
                x = x + std * keras.random.normal(ops.shape(x), seed=self.seed_generator)
            return ops.clip(x, 0.0, 1.0)

        def compute_output_shape(self, input_shape):
            return input_shape

    class RandomBoxErasing(keras.layers.Layer):
        """Random erasing (Zhong et al. 2020): with probability p, one box covering 2-25 %
        of the face, aspect 0.5-2, is filled with uniform noise."""

        def __init__(self, probability, seed=None, **kwargs):
            super().__init__(**kwargs)
            self.probability = float(probability)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def call(self, x, training=None):
            if not training:
                return x
            h, w = x.shape[1], x.shape[2]
            n = ops.shape(x)[0]
            u = keras.random.uniform((n, 5), seed=self.seed_generator)
            area = (0.02 + 0.23 * u[:, 0]) * h * w
            aspect = ops.exp((u[:, 1] - 0.5) * 2 * 0.6931)      # 0.5-2, log-uniform
            bh, bw = ops.sqrt(area * aspect), ops.sqrt(area / aspect)
            cy, cx = u[:, 2] * h, u[:, 3] * w
            rows = ops.arange(h, dtype=x.dtype)[None, :]
            cols = ops.arange(w, dtype=x.dtype)[None, :]
            in_rows = ops.abs(rows + 0.5 - cy[:, None]) < bh[:, None] / 2
            in_cols = ops.abs(cols + 0.5 - cx[:, None]) < bw[:, None] / 2
            box = ops.logical_and(in_rows[:, :, None], in_cols[:, None, :])
            box = ops.logical_and(box, (u[:, 4] < self.probability)[:, None, None])
            fill = keras.random.uniform(ops.shape(x), seed=self.seed_generator, dtype=x.dtype)
            return ops.where(box[..., None], fill, x)

        def compute_output_shape(self, input_shape):
            return input_shape

    return RandomAffine, RandomDownscale, PhotometricJitter, RandomBoxErasing


_CLASSES: list = []


def layer_classes() -> tuple:
    """(RandomAffine, RandomDownscale, PhotometricJitter, RandomBoxErasing), built on first use so that
    importing this module does not import Keras."""
    if not _CLASSES:
        _CLASSES.extend(_layer_classes())
    return tuple(_CLASSES)


def precision_policy(value) -> str:
    """The Keras dtype policy `train.mixed_precision` names: false (float32), true (mixed_float16,
    for GPUs), or a policy by name. mixed_bfloat16 is for CPUs with bfloat16 instructions
    (avx512_bf16, AMX); without them it halves training speed (reports/benchmarks/model_throughput.md)."""
    if value is False or value is None or value == "float32":
        return "float32"
    if value is True or value == "mixed_float16":
        return "mixed_float16"
    if value == "mixed_bfloat16":
        return "mixed_bfloat16"
    raise EmorecError(f"params.yaml: mixed_precision must be false, true (mixed_float16) or mixed_bfloat16, "
                      f"got {value!r}")
