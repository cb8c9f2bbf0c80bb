"""Training on every device of one machine (`train.distribution: data_parallel`) with the
backend's own engine: Keras' DataParallel distribution on JAX, tf.distribute's
MirroredStrategy on TensorFlow. Each device takes `batch_size` images, so the global batch
is `batch_size` x devices; the learning rate is left as configured."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from emorec.errors import EmorecError

CHOICES = (None, "data_parallel")


@dataclass
class Plan:
    scope: contextlib.AbstractContextManager
    global_batch: int
    devices: int
    engine: str


def plan(distribution: str | None, batch_size: int) -> Plan:
    if distribution not in CHOICES:
        raise EmorecError(f"params.yaml: train.distribution must be null or data_parallel, got {distribution!r}")
    if distribution is None:
        return Plan(contextlib.nullcontext(), batch_size, 1, "one device")
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        devices = keras.distribution.list_devices()
        return Plan(_jax_scope(keras.distribution.DataParallel(devices=devices)), batch_size * len(devices),
                    len(devices), f"keras.distribution.DataParallel over {len(devices)} {devices[0].split(':')[0]} device(s)")
    if backend == "tensorflow":
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy()
        n = strategy.num_replicas_in_sync
        return Plan(strategy.scope(), batch_size * n, n, f"tf.distribute.MirroredStrategy over {n} replica(s)")
    raise EmorecError(f"train.distribution: data_parallel needs the jax or tensorflow backend, not {backend}")


@contextlib.contextmanager
def _jax_scope(distribution):
    import keras

    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(distribution)
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def distributed_data(x_train, y_train, x_val, y_val, cfg):
    """Data for a data-parallel fit, where every batch must split evenly over the devices:
    training batches re-shuffled each epoch with the last partial batch left out (a different
    remainder each epoch), and the per-epoch validation (the checkpoint's choice) on the
    first len - len % batch images. The final validation metrics use every image."""
    import keras

    seed, size = cfg.seed, cfg.batch_size

    class FullBatches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(x_train))

        def __len__(self):
            return len(x_train) // size

        def __getitem__(self, index):
            idx = np.sort(self.order[index * size:(index + 1) * size])
            return x_train[idx], y_train[idx]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(x_train))

    return FullBatches(), whole_batches(x_val, y_val, cfg.batch_size)


def whole_batches(x, y, batch_size: int):
    """The first len - len % batch_size rows (at least one batch): what splits evenly."""
    n = max(batch_size, len(x) - len(x) % batch_size)
    return x[:n], y[:n]


def predict_all(model, x, verbose: int = 0, batch_size: int = 256):
    """model.predict on every row; under a data-parallel distribution the input is padded
    to whole batches (rows are independent) and the padding's outputs dropped."""
    import keras

    distribution = keras.distribution.distribution() if keras.backend.backend() == "jax" else None
    if distribution is None or len(x) % batch_size == 0:
        return model.predict(x, batch_size=batch_size, verbose=verbose)
    pad = batch_size - len(x) % batch_size
    padded = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    return model.predict(padded, batch_size=batch_size, verbose=verbose)[:len(x)]
