"""Keras-application backbones with the paper's heads (§IV.F.3-5, InceptionV3 in Tables
IV/V/XIV). Inputs arrive in [0, 1]; a fixed scaling layer maps them to the convention
the ImageNet weights were trained with. A pretrained backbone is frozen unless
`fine_tune: true`; trained from scratch, every layer trains (a frozen random backbone
learns nothing)."""

from __future__ import annotations

from emorec.models import ModelSpec, register
from emorec.models.parts import features_and_head, input_scaling, softmax_output


def _backbone(app: str, input_shape, weights):
    import keras

    path = str(weights.path) if weights is not None and weights.pretrained else None
    common = dict(include_top=False, weights=None, input_shape=input_shape)
    if app == "densenet121":
        model = keras.applications.DenseNet121(**common)
    elif app == "vgg16":
        model = keras.applications.VGG16(**common)
    elif app == "inceptionv3":
        model = keras.applications.InceptionV3(**common)
    elif app == "efficientnetv2b0":
        model = keras.applications.EfficientNetV2B0(include_preprocessing=False, **common)
    else:  # pragma: no cover - the registry only names the four above
        raise KeyError(app)
    if path:
        model.load_weights(path)
    return model


def _frozen(weights, fine_tune: bool) -> bool:
    return weights is not None and weights.pretrained and not fine_tune


def _builder(app: str, convention: str, head: str, adapter: bool = False):
    def build(input_shape, num_classes, weights=None, fine_tune=False, dense_units=128,
              dropout=0.3):
        from keras import layers

        def features(x):
            if adapter:  # §IV.F.5: a Conv2D adapts the channels before the backbone
                x = layers.Conv2D(3, 3, padding="same", activation="relu", name="channel_adapter")(x)
            else:
                x = input_scaling(x, convention, input_shape[-1])
            shape = (*input_shape[:2], 3)
            return _backbone(app, shape, weights)(x)

        def head_fn(x):
            if head == "gap_dense_bn":          # DenseNet121: GAP, Dense 512 ReLU, BatchNorm
                x = layers.GlobalAveragePooling2D(name="gap")(x)
                x = layers.Dense(dense_units, activation="relu", name="dense1")(x)
                x = layers.BatchNormalization(name="dense1_bn")(x)
            else:                               # VGG16: Flatten; others: GAP; 2 x Dense, Dropout
                x = (layers.Flatten(name="flatten") if head == "flatten_2dense"
                     else layers.GlobalAveragePooling2D(name="gap"))(x)
                x = layers.Dense(dense_units, activation="relu", name="dense1")(x)
                x = layers.Dense(dense_units, activation="relu", name="dense2")(x)
                x = layers.Dropout(dropout, name="dropout")(x)
            return softmax_output(x, num_classes)

        # EfficientNetV2B0 is fine-tuned in the paper; its trainable adapter sits in front.
        frozen = _frozen(weights, fine_tune) and not adapter
        return features_and_head(input_shape, features, head_fn, app, trainable_features=not frozen)

    return build


register(ModelSpec("densenet121", _builder("densenet121", "torch", "gap_dense_bn"),
                   min_input_size=32, channels=3, pretrainable=True,
                   description="DenseNet121, paper §IV.F.3: frozen ImageNet base, GAP, Dense 512, BN"))
register(ModelSpec("vgg16", _builder("vgg16", "caffe", "flatten_2dense"),
                   min_input_size=32, channels=3, pretrainable=True,
                   description="VGG16, paper §IV.F.4: frozen ImageNet base, Flatten, 2 x Dense 128, Dropout 0.3"))
register(ModelSpec("efficientnetv2b0", _builder("efficientnetv2b0", "tf", "gap_2dense", adapter=True),
                   min_input_size=32, pretrainable=True,
                   description="EfficientNetV2B0, paper §IV.F.5: Conv2D adapter, fine-tuned backbone, "
                               "GAP, 2 x Dense 128, Dropout 0.3"))
register(ModelSpec("inceptionv3", _builder("inceptionv3", "tf", "gap_2dense"),
                   min_input_size=75, channels=3, pretrainable=True,
                   description="InceptionV3 (paper Tables IV/V/XIV; head not described there: "
                               "GAP, 2 x Dense 128, Dropout 0.3)"))
