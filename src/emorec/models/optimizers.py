"""Optimizers by name, including Rectified Adam (Liu et al. 2020), which the paper uses for
its ViTs and Keras 3 does not ship. Written with keras.ops only, so it runs on every
backend and saves/loads as a registered serializable class."""

from __future__ import annotations

OPTIMIZERS = ("rmsprop", "adam", "adamw", "sgd", "sgd_nesterov", "radam")
SCHEDULES = (None, "cosine", "cosine_to_zero")


def _rectified_adam_class():
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="emorec")
    class RectifiedAdam(keras.optimizers.Optimizer):
        """Adam whose adaptive step is switched on only once the variance of the adaptive
        rate is tractable (rho_t > 4); before that it takes plain momentum steps."""

        def __init__(self, learning_rate=1e-3, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                     name="rectified_adam", **kwargs):
            super().__init__(learning_rate=learning_rate, name=name, **kwargs)
            self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

        def build(self, var_list):
            if self.built:
                return
            super().build(var_list)
            self._m, self._v = self.add_optimizer_variables(var_list, ["momentum", "velocity"])

        def update_step(self, gradient, variable, learning_rate):
            dtype = variable.dtype
            lr = ops.cast(learning_rate, dtype)
            g = ops.cast(gradient, dtype)
            t = ops.cast(self.iterations + 1, dtype)
            b1, b2 = ops.cast(self.beta_1, dtype), ops.cast(self.beta_2, dtype)
            m = self._m[self._get_variable_index(variable)]
            v = self._v[self._get_variable_index(variable)]
            self.assign(m, b1 * m + (1 - b1) * g)
            self.assign(v, b2 * v + (1 - b2) * ops.square(g))
            b1_t, b2_t = ops.power(b1, t), ops.power(b2, t)
            m_hat = m / (1 - b1_t)
            rho_inf = 2 / (1 - b2) - 1
            rho_t = rho_inf - 2 * t * b2_t / (1 - b2_t)
            safe_rho = ops.maximum(rho_t, 5.0)
            rect = ops.sqrt((safe_rho - 4) * (safe_rho - 2) * rho_inf
                            / ((rho_inf - 4) * (rho_inf - 2) * safe_rho))
            adaptive = rect * m_hat / (ops.sqrt(v / (1 - b2_t)) + self.epsilon)
            self.assign_sub(variable, lr * ops.where(rho_t > 4, adaptive, m_hat))

        def get_config(self):
            config = super().get_config()
            config.update(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)
            return config

    return RectifiedAdam


_CACHE: dict[str, type] = {}


def rectified_adam_class() -> type:
    if "radam" not in _CACHE:
        _CACHE["radam"] = _rectified_adam_class()
    return _CACHE["radam"]


def rectified_adam(**kwargs):
    return rectified_adam_class()(**kwargs)


def make(name: str, learning_rate, schedule: str | None = None, total_steps: int = 1,
         weight_decay: float | None = None, warmup_steps: int = 0, weight_ema: float | None = None,
         floor: float | None = None):
    """The optimizer. schedule 'cosine' decays the rate to 1 % over `total_steps`,
    'cosine_to_zero' to 0, or either to `floor` (a fraction) when given; after `total_steps`
    the rate stays there (weight averaging's phase). Either first ramps it up linearly over
    `warmup_steps`; without a schedule the rate is constant.
    `weight_decay` is decoupled (AdamW-style) on every optimizer that takes it.
    `weight_ema` keeps a moving average of the weights with that momentum (Polyak
    averaging); `ema_callbacks` makes validation and checkpoints use it."""
    import keras

    if schedule in ("cosine", "cosine_to_zero"):
        alpha = floor if floor is not None else 0.01 if schedule == "cosine" else 0.0
        warmup_steps = min(int(warmup_steps), max(total_steps - 1, 0))
        if warmup_steps:
            learning_rate = keras.optimizers.schedules.CosineDecay(
                0.0, max(total_steps - warmup_steps, 1), alpha=alpha,
                warmup_target=learning_rate, warmup_steps=warmup_steps)
        else:
            learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, total_steps, alpha=alpha)
    common = {"weight_decay": weight_decay} if weight_decay else {}     # what every optimizer takes
    if weight_ema:
        common.update(use_ema=True, ema_momentum=float(weight_ema))
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, **common)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, **common)
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate, **{"weight_decay": 0.004, **common})
    if name == "radam":
        return rectified_adam(learning_rate=learning_rate, **common)
    return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=name == "sgd_nesterov", **common)


def ema_callbacks(weight_ema: float | None) -> list:
    """With weight EMA: swap the averaged weights in for validation and at each epoch's end,
    so the monitor, the best checkpoint and early stopping all judge the average. Place
    them after BackupAndRestore (which must save the raw weights) and before the checkpoint."""
    import keras

    return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if weight_ema else []
