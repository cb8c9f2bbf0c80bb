"""Stochastic weight averaging (Izmailov et al. 2018): the last epochs of a run hold the
learning rate at a floor (or, with `swa_rate: null`, follow the schedule to its end), their
end-of-epoch weights are averaged, and batch norm's
statistics are re-estimated for the average (averaged weights make activations that
no epoch's running statistics describe).

The average is validated as the last epoch: the callback swaps it in before the checkpoint
sees that epoch's logs, so validation chooses between it and the best single epoch, and
nothing reads the test split. With a work folder the running average is saved each epoch,
so a run killed and resumed (BackupAndRestore) carries on with the average it had."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec.errors import EmorecError


def batch_norm_layers(model) -> list:
    import keras

    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, keras.layers.BatchNormalization)]


def reestimate_batch_norm(model, inputs: np.ndarray, batch_size: int = 256) -> int:
    """Set every batch-norm layer's moving mean and variance to the average of its batch
    statistics over `inputs` (forward passes in training mode; each batch weighted equally,
    as torch's update_bn does). Returns the number of layers updated."""
    norms = batch_norm_layers(model)
    if not norms:
        return 0
    if len(inputs) == 0:
        raise EmorecError("re-estimating batch norm needs at least one training image")
    saved = [layer.momentum for layer in norms]
    try:
        for k, start in enumerate(range(0, len(inputs), batch_size), 1):
            for layer in norms:          # moving = moving * (k-1)/k + batch / k: a running mean
                layer.momentum = (k - 1) / k
            model(inputs[start:start + batch_size], training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum
    return len(norms)


def swa_callback(epochs: int, swa_epochs: int, bn_inputs: np.ndarray, validation: tuple,
                 state_file: Path | None = None, batch_size: int = 256):
    """A callback that averages the trainable weights at the end of each of the last
    `swa_epochs` of `epochs`, and at the last one swaps the average in, re-estimates batch
    norm on `bn_inputs` and replaces that epoch's validation figures with the average's.
    Place it before the checkpoint (and after BackupAndRestore, which must save the raw
    weights). `.applied` says whether the average was swapped in, `.last_epoch_raw` what the
    last epoch's own weights scored (the paired figure the average is measured against)."""
    import keras

    if not 1 <= swa_epochs < epochs:
        raise EmorecError(f"swa_epochs must be at least 1 and below epochs ({epochs}), got {swa_epochs}")
    x_val, y_val = validation

    class WeightAveraging(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.count, self.mean, self.applied, self.averaged_epochs = 0, None, False, []
            self.last_epoch_raw = None      # the last epoch's own validation figures, before the swap

        def on_train_begin(self, logs=None):
            if state_file is not None and Path(state_file).is_file():
                with np.load(state_file) as saved:
                    self.count = int(saved["count"])
                    self.averaged_epochs = [int(e) for e in saved["epochs"]]
                    self.mean = [saved[f"w{i}"] for i in range(len(saved.files) - 2)]

        def on_epoch_end(self, epoch, logs=None):
            if epoch < epochs - swa_epochs or epoch in self.averaged_epochs:
                return
            current = [np.asarray(v.numpy(), np.float64) for v in self.model.trainable_variables]
            self.count += 1
            self.mean = current if self.mean is None else \
                [m + (c - m) / self.count for m, c in zip(self.mean, current)]
            self.averaged_epochs.append(epoch)
            if state_file is not None:
                tmp = Path(state_file).with_suffix(".tmp.npz")
                np.savez(tmp, count=self.count, epochs=np.asarray(self.averaged_epochs),
                         **{f"w{i}": m for i, m in enumerate(self.mean)})
                tmp.replace(state_file)
            if epoch != epochs - 1:
                return
            self.last_epoch_raw = {k: float(v) for k, v in (logs or {}).items() if k.startswith("val_")}
            for variable, mean in zip(self.model.trainable_variables, self.mean):
                variable.assign(mean.astype(variable.dtype))
            reestimate_batch_norm(self.model, bn_inputs, batch_size)
            scores = self.model.evaluate(x_val, y_val, batch_size=batch_size, verbose=0, return_dict=True)
            if logs is not None:
                logs.update({f"val_{k}": float(v) for k, v in scores.items()})
            self.applied = True
            print(f"weight average of epochs {[e + 1 for e in self.averaged_epochs]}: "
                  f"validation {', '.join(f'{k} {v:.4f}' for k, v in scores.items())} (the last epoch's "
                  f"own weights: {', '.join(f'{k} {v:.4f}' for k, v in self.last_epoch_raw.items())})", flush=True)

    return WeightAveraging()
