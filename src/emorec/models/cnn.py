"""The paper's CNN (§IV.F.1): conv blocks with BatchNorm + ReLU, max pooling and
dropout 0.25, then two Dense-512 layers with BatchNorm, ReLU and dropout 0.5."""

from __future__ import annotations

from emorec.models import ModelSpec, register
from emorec.models.parts import softmax_output


def build_cnn(
    input_shape: tuple[int, int, int],
    num_classes: int,
    filters: tuple[int, ...] = (32, 64, 128, 256),
    convs_per_block: int = 1,
    dense_units: int = 512,
    conv_dropout: float = 0.25,
    dense_dropout: float = 0.5,
    name: str = "cnn",
):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for block, n_filters in enumerate(filters):
        for conv in range(convs_per_block):
            x = layers.Conv2D(n_filters, 3, padding="same", use_bias=False,
                              name=f"block{block + 1}_conv{conv + 1}")(x)
            x = layers.BatchNormalization(name=f"block{block + 1}_bn{conv + 1}")(x)
            x = layers.ReLU(name=f"block{block + 1}_relu{conv + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(x)
        x = layers.Dropout(conv_dropout, name=f"block{block + 1}_dropout")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in range(2):
        x = layers.Dense(dense_units, use_bias=False, name=f"dense{i + 1}")(x)
        x = layers.BatchNormalization(name=f"dense{i + 1}_bn")(x)
        x = layers.ReLU(name=f"dense{i + 1}_relu")(x)
        x = layers.Dropout(dense_dropout, name=f"dense{i + 1}_dropout")(x)
    return keras.Model(inputs, softmax_output(x, num_classes), name=name)


register(ModelSpec("cnn", build_cnn, min_input_size=16,
                   description="paper CNN, §IV.F.1 (trained from scratch)"))
