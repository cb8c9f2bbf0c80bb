"""The settings of one training run: params.yaml's `train`, the model's own block, its
`cpu:` / `gpu:` scope and the dataset's `train_overrides`, merged and checked before any
training starts (a bad value stops the stage with the key named, not mid-run)."""

from __future__ import annotations

from dataclasses import dataclass

from emorec.errors import EmorecError
from emorec.models.optimizers import OPTIMIZERS, SCHEDULES
from emorec.training.sampling import SOURCE_PRIORS

# Keys of models.<name> that are not TrainConfig fields: the architecture, the grid limits
# of the CPU scope, and (documentation only) the paper's own settings.
MODEL_ONLY_KEYS = ("arch", "cpu", "gpu", "paper")


def model_arch(model_params: dict, scope: str = "full") -> dict:
    """The architecture: models.<m>.arch, with the scope block's own `arch:` over it."""
    narrowed = (model_params.get(scope) or {}).get("arch") if scope in ("cpu", "gpu") else None
    return {**(model_params.get("arch") or {}), **(narrowed or {})}


@dataclass
class TrainConfig:
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    monitor: str = "val_accuracy"
    early_stopping_patience: int | None = None
    reduce_lr_patience: int | None = None
    reduce_lr_factor: float = 0.5
    min_learning_rate: float = 1e-6
    seed: int = 42
    input_size: int | None = None
    channels: int | None = None
    online_augmentation: dict | None = None   # numpy warps per image, on the host (paper §IV.D)
    batch_augmentation: dict | None = None    # in-graph augmentation of every batch (recipe.BatchAugment)
    label_smoothing: float = 0.0
    weight_decay: float | None = None         # decoupled, per optimizer step
    lr_schedule: str | None = None            # null | cosine (to 1 %) | cosine_to_zero
    warmup_epochs: int = 0                    # linear warm-up before the cosine decay
    weight_ema: float | None = None           # momentum of a weight moving average; it is what's validated and kept
    swa_epochs: int | None = None             # weight averaging over the last N epochs (training.averaging)
    swa_rate: float | None = 0.1              # ... which hold the rate at this fraction of learning_rate
                                              # (null: no hold, the schedule runs to its end)
    weights: str | None = None           # imagenet | null (scratch) | a file path
    weights_fallback: str | None = None  # scratch: train from scratch when weights are unavailable
    allow_download: bool = True          # fetch missing ImageNet weights (never at import time)
    cache_features: bool = True          # frozen backbone + no online augmentation: features once
    max_train_images: int | None = None  # seeded, class-stratified subsample (CPU budget)
    source_prior: str | None = None      # shared: weight faces so every source shows the union's class mix
    mixed_precision: bool | str = False  # true: mixed_float16 (GPU runs); mixed_bfloat16 (bf16 CPUs)
    jit_compile: str | bool = "auto"     # XLA; Keras' own default is "auto"
    distribution: str | None = None      # data_parallel: every device of this machine
    verbose: int = 2

    @classmethod
    def from_params(cls, train_params: dict, model_params: dict, seed: int, dataset: str | None = None,
                    scope: str = "full", by_dataset: dict | None = None) -> "TrainConfig":
        """train.*, the model's own settings, its `cpu:`/`gpu:` block (scope), then by_dataset[dataset]
        (params.yaml's train_overrides, kept out of `train` so each train stage depends on its own entry)."""
        base, overrides = dict(train_params), (by_dataset or {}).get(dataset) or {}
        if "overrides" in base or not isinstance(overrides, dict):
            raise EmorecError(f"params.yaml: per-dataset settings go in train_overrides.<dataset> as a mapping "
                              f"(train.overrides moved there); got {overrides!r} for {dataset!r}")
        own = {k: v for k, v in model_params.items() if k not in MODEL_ONLY_KEYS}
        narrowed = {k: v for k, v in (model_params.get(scope) or {}).items() if k not in ("cells", "why", "arch")} \
            if scope in ("cpu", "gpu") else {}
        merged = {**base, **own, **narrowed, **(overrides if scope != "gpu" else {})}
        if unknown := sorted(set(merged) - set(cls.__dataclass_fields__)):
            raise EmorecError(f"params.yaml: unknown training setting(s) {unknown}")
        merged["seed"] = seed
        cfg = cls(**merged)
        if cfg.optimizer not in OPTIMIZERS:
            raise EmorecError(f"params.yaml: unknown optimizer {cfg.optimizer!r}; use one of {OPTIMIZERS}")
        if cfg.epochs < 1 or cfg.batch_size < 1:
            raise EmorecError("params.yaml: epochs and batch_size must be at least 1")
        from emorec.training.recipe import BatchAugment, precision_policy

        if cfg.lr_schedule not in SCHEDULES:
            raise EmorecError(f"params.yaml: lr_schedule must be one of {SCHEDULES}, got {cfg.lr_schedule!r}")
        if not 0 <= cfg.label_smoothing < 0.5 or not 0 <= (cfg.weight_ema or 0) < 1:
            raise EmorecError("params.yaml: label_smoothing must be in [0, 0.5), weight_ema null or in (0, 1)")
        in_graph = BatchAugment.from_params(cfg.batch_augmentation)   # refuses unknown keys and bad ranges
        if cfg.online_augmentation and in_graph and in_graph.warps:
            raise EmorecError("params.yaml: online_augmentation warps faces on the host, so batch_augmentation may "
                              "add only downscale, erasing and photometric changes (horizontal_flip: false; "
                              "rotation_degrees, translation, zoom: 0)")
        precision_policy(cfg.mixed_precision)                 # refuses an unknown dtype policy
        if cfg.source_prior not in SOURCE_PRIORS or (cfg.source_prior and cfg.distribution):
            raise EmorecError(f"params.yaml: source_prior must be one of {SOURCE_PRIORS} (not with distribution), "
                              f"got {cfg.source_prior!r}")
        if cfg.max_train_images is not None and cfg.max_train_images < 1:
            raise EmorecError("params.yaml: max_train_images must be null or at least 1")
        if cfg.swa_epochs is not None:
            if not 1 <= cfg.swa_epochs < cfg.epochs or not (cfg.swa_rate is None or 0 < cfg.swa_rate <= 1):
                raise EmorecError(f"params.yaml: swa_epochs must be null or from 1 to epochs - 1 ({cfg.epochs - 1}), "
                                  f"swa_rate null or in (0, 1]; got {cfg.swa_epochs!r}, {cfg.swa_rate!r}")
            if cfg.distribution:
                raise EmorecError("params.yaml: swa_epochs is not available with distribution: data_parallel "
                                  "(its batch-norm pass runs on one device); set one of them null")
            if cfg.weight_ema or cfg.early_stopping_patience or cfg.reduce_lr_patience:
                raise EmorecError("params.yaml: swa_epochs averages the last epochs, so it takes neither weight_ema nor "
                                  "early_stopping_patience (a stop would cut the average short) nor reduce_lr_patience "
                                  "(set them null)")
        if cfg.lr_schedule and cfg.reduce_lr_patience:
            raise EmorecError("params.yaml: lr_schedule: cosine and reduce_lr_patience both set; "
                              "choose one (set reduce_lr_patience: null)")
        return cfg
