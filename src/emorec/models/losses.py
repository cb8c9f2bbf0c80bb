"""Losses by name. Label smoothing for integer labels, which Keras' own sparse
cross-entropy does not take; a registered class, so compiled models load in safe mode."""

from __future__ import annotations

_CACHE: dict[str, type] = {}


def smoothed_crossentropy_class() -> type:
    if "smoothed" not in _CACHE:
        import keras
        from keras import ops

        @keras.saving.register_keras_serializable(package="emorec")
        class SparseSmoothedCrossentropy(keras.losses.Loss):
            """Cross-entropy on integer labels against targets (1 - s) * one_hot + s / K."""

            def __init__(self, label_smoothing=0.1, name="sparse_smoothed_crossentropy", **kwargs):
                super().__init__(name=name, **kwargs)
                self.label_smoothing = float(label_smoothing)

            def call(self, y_true, y_pred):
                classes = y_pred.shape[-1]
                onehot = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), classes, dtype=y_pred.dtype)
                return keras.losses.categorical_crossentropy(onehot, y_pred,
                                                             label_smoothing=self.label_smoothing)

            def get_config(self):
                return {**super().get_config(), "label_smoothing": self.label_smoothing}

        _CACHE["smoothed"] = SparseSmoothedCrossentropy
    return _CACHE["smoothed"]


def make(label_smoothing: float = 0.0):
    """The training loss: Keras' sparse cross-entropy, or its label-smoothed form."""
    if not label_smoothing:
        return "sparse_categorical_crossentropy"
    return smoothed_crossentropy_class()(label_smoothing=label_smoothing)
