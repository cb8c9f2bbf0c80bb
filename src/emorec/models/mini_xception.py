"""mini-Xception (Arriaga et al. 2018, "Real-time convolutional neural networks for emotion
and gender classification"): a model of our own in the zoo, not one of the paper's. Two
plain 3x3 convolutions, then residual modules of two depthwise-separable 3x3 convolutions
and a 3x3/2 max pooling beside a 1x1/2 projection (written as a 1x1 pooling of stride 2
and a 1x1 convolution, the same function); global average pooling and a softmax.
51 k parameters at its published widths, against the paper CNN's 1.8 M: the issue's lever
"a from-scratch net with depthwise-separable or residual blocks", measured against the CNN
at equal CPU time in reports/recipe/README.md (it loses there: 0.578 against 0.632 on test).

One departure: the published net ends in a 3x3 convolution to the classes before the
pooling; here the pooled features go through the float32 dense softmax every model of
the zoo ends in (safe under mixed precision)."""

from __future__ import annotations

from emorec.models import ModelSpec, register
from emorec.models.parts import pooled_softmax


def residual_module(x, filters: int, name: str):
    from keras import layers

    # the 1x1/2 projection as every second pixel, then a 1x1 convolution: the same function and
    # weights, but TensorFlow 2.21's oneDNN kernels corrupt the heap training a strided 1x1
    # convolution on some CPUs (a 2-core AMD EPYC with avx512_bf16 aborts in the first step)
    shortcut = layers.MaxPooling2D(1, strides=2, name=f"{name}_subsample")(x)
    shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(shortcut)
    shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
    y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep1")(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    y = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(y)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def build_mini_xception(input_shape, num_classes, stem_filters=(8, 8), filters=(16, 32, 64, 128),
                        dropout: float = 0.0):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for i, n_filters in enumerate(stem_filters):
        x = layers.Conv2D(n_filters, 3, padding="same", use_bias=False, name=f"stem_conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"stem_bn{i + 1}")(x)
        x = layers.ReLU(name=f"stem_relu{i + 1}")(x)
    for i, n_filters in enumerate(filters):
        x = residual_module(x, n_filters, f"module{i + 1}")
    return keras.Model(inputs, pooled_softmax(x, num_classes, dropout), name="mini_xception")


# 4 modules halve a 48-px face to 3 px; below 16 px the last ones pool a single pixel
register(ModelSpec("mini_xception", build_mini_xception, min_input_size=16,
                   description="mini-Xception (Arriaga et al. 2018), ours: not a paper row (trained from scratch)"))
