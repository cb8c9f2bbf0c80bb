"""The paper's best model (§IV.F.7; its published relative is PAtt-Lite): a MobileNet base
cut after its fifth depthwise-separable block (stride 8, where faces still have spatial
layout), a patch-extraction block of parallel separable convolutions with 1x1, 3x3 and
5x5 kernels whose outputs are concatenated, a squeeze-and-excitation style attention
block (global average pooling, two dense layers, sigmoid gates that re-weight the
channels), then GAP, Dense, Dropout and softmax."""

from __future__ import annotations

from emorec.models import ModelSpec, register
from emorec.models.parts import features_and_head, input_scaling, softmax_output


def patch_extraction(x, kernels=(1, 3, 5), filters=64, stride=2):
    from keras import layers

    branches = []
    for k in kernels:
        b = layers.SeparableConv2D(filters, k, strides=stride, padding="same", use_bias=False,
                                   name=f"patch_{k}x{k}")(x)
        b = layers.BatchNormalization(name=f"patch_{k}x{k}_bn")(b)
        branches.append(layers.ReLU(name=f"patch_{k}x{k}_relu")(b))
    return layers.Concatenate(name="patches")(branches)


def channel_attention(x, reduction=8):
    from keras import layers

    channels = x.shape[-1]
    w = layers.GlobalAveragePooling2D(name="attention_pool")(x)
    w = layers.Dense(max(channels // reduction, 8), activation="relu", name="attention_squeeze")(w)
    w = layers.Dense(channels, activation="sigmoid", name="attention_gates")(w)
    w = layers.Reshape((1, 1, channels), name="attention_reshape")(w)
    return layers.Multiply(name="attention_reweight")([x, w])


def build_custom_mobilenet(input_shape, num_classes, weights=None, fine_tune=False, alpha=1.0,
                           cut_layer="conv_pw_5_relu", patch_filters=64, patch_kernels=(1, 3, 5),
                           attention_reduction=8, dense_units=256, dropout=0.3):
    import keras
    from keras import layers

    pretrained = weights is not None and weights.pretrained

    def features(x):
        x = input_scaling(x, "tf", input_shape[-1])
        base = keras.applications.MobileNet(input_shape=(*input_shape[:2], 3), alpha=alpha,
                                            include_top=False, weights=None)
        if pretrained:
            base.load_weights(str(weights.path))
        cut = keras.Model(base.input, base.get_layer(cut_layer).output, name="mobilenet_base")
        return cut(x)

    def head(x):
        x = patch_extraction(x, tuple(patch_kernels), patch_filters)
        x = channel_attention(x, attention_reduction)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        x = layers.Dense(dense_units, activation="relu", name="dense")(x)
        x = layers.Dropout(dropout, name="dropout")(x)
        return softmax_output(x, num_classes)

    return features_and_head(input_shape, features, head, "custom_mobilenet",
                             trainable_features=not (pretrained and not fine_tune))


register(ModelSpec("custom_mobilenet", build_custom_mobilenet, min_input_size=32, channels=3,
                   pretrainable=True,
                   description="MobileNet + patch extraction + channel attention, paper §IV.F.7"))
