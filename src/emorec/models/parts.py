"""Small pieces every architecture shares: the float32 softmax output (safe under mixed
precision), fixed input scaling per backbone convention, and the features/head split."""

from __future__ import annotations

# Per-channel (mean, std) on [0, 1] inputs that reproduce each Keras application's own
# preprocess_input, so our single [0, 1] input path feeds pretrained backbones correctly.
SCALING = {
    "tf": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),                         # -> [-1, 1]
    "torch": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),           # ImageNet mean/std
    "caffe": ((123.68 / 255, 116.779 / 255, 103.939 / 255), (1 / 255,) * 3),  # 0-255 minus mean
}


def softmax_output(x, num_classes: int):
    from keras import layers

    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="probabilities")(x)


def pooled_softmax(x, num_classes: int, dropout: float = 0.0):
    """Global average pooling, optional dropout, the float32 softmax: the head of the
    fully convolutional nets written here (ResNet-18, mini-Xception)."""
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    return softmax_output(x, num_classes)


def input_scaling(x, convention: str, channels: int = 3, name: str = "input_scaling"):
    """Fixed (non-trainable) per-channel normalisation of [0, 1] inputs, as a 1x1
    convolution whose weights are set once (so it saves and loads in safe mode). 'caffe'
    also swaps RGB to BGR, as VGG's weights expect."""
    import numpy as np
    from keras import layers

    mean, std = (np.array(v[:channels], "float32") for v in SCALING[convention])
    order = (2, 1, 0) if convention == "caffe" and channels == 3 else tuple(range(channels))
    kernel = np.zeros((1, 1, channels, channels), "float32")
    for out_c, in_c in enumerate(order):
        kernel[0, 0, in_c, out_c] = 1.0 / std[in_c]
    bias = -(mean / std)[list(order)]
    conv = layers.Conv2D(channels, 1, trainable=False, name=name)
    y = conv(x)
    conv.set_weights([kernel, bias.astype("float32")])
    return y


def features_and_head(input_shape, features_fn, head_fn, name: str, trainable_features: bool = True):
    """inputs -> `features` (a nested Model) -> `head` (a nested Model) -> probabilities."""
    import keras

    inputs = keras.Input(shape=input_shape, name="image")
    features = keras.Model(inputs, features_fn(inputs), name="features")
    features.trainable = trainable_features
    head_in = keras.Input(shape=features.output_shape[1:], name="feature_map")
    head = keras.Model(head_in, head_fn(head_in), name="head")
    outer_in = keras.Input(shape=input_shape, name="image")
    # training=False keeps a frozen backbone's BatchNorm in inference mode (Keras' guidance
    # for fine-tuning), so cached features equal the ones computed inside the model.
    feats = features(outer_in, training=None if trainable_features else False)
    return keras.Model(outer_in, head(feats), name=name)
