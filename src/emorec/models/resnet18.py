"""ResNet-18 (He et al. 2016), written here because Keras ships none (paper §IV.F.2):
a 7x7/2 stem with 3x3/2 max pooling (below 64 px: one 3x3/2 convolution, no pooling, so
a 48-px face is 24 px, not 12, entering the first stage), 4 stages x 2 basic blocks with
BatchNorm + ReLU and identity or 1x1-projection shortcuts, global average pooling, softmax."""

from __future__ import annotations

from emorec.models import ModelSpec, register
from emorec.models.parts import pooled_softmax


def basic_block(x, filters: int, stride: int, name: str):
    from keras import layers

    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_proj")(x)
        shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_out")(y)


def build_resnet18(input_shape, num_classes, filters=(64, 128, 256, 512), blocks_per_stage=2,
                   small_input_stem=None, dropout=0.0):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    small = input_shape[0] < 64 if small_input_stem is None else small_input_stem
    if small:
        x = layers.Conv2D(filters[0], 3, strides=2, padding="same", use_bias=False,
                          name="stem_conv")(inputs)
    else:
        x = layers.Conv2D(filters[0], 7, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    if not small:
        x = layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, n_filters in enumerate(filters):
        for block in range(blocks_per_stage):
            stride = 2 if block == 0 and stage > 0 else 1
            x = basic_block(x, n_filters, stride, f"stage{stage + 1}_block{block + 1}")
    return keras.Model(inputs, pooled_softmax(x, num_classes, dropout), name="resnet18")


register(ModelSpec("resnet18", build_resnet18, min_input_size=16,
                   description="ResNet-18, paper §IV.F.2 (written here; trained from scratch)"))
