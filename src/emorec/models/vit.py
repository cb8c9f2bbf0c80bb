"""ViT-B16 and ViT-B32 (paper §IV.F.6): the transformer without its top, then BatchNorm +
Dense head and softmax, trained with Rectified Adam.

The backbone is vit-keras' architecture assembled here from its serializable layers, with
the one piece vit-keras writes as a `Lambda` (taking the class token) replaced by our
registered `ExtractToken` layer. So a saved ViT holds no code and loads with Keras safe
mode on, like every other model; the layer names match vit-keras', so its
`load_weights_numpy` still fills the backbone from the published .npz files."""

from __future__ import annotations

from emorec.models import ModelSpec, register
from emorec.models.parts import features_and_head, input_scaling, softmax_output

# ViT-Base (Dosovitskiy et al.): the same for both patch sizes.
LAYERS, HIDDEN, HEADS, MLP_DIM = 12, 768, 12, 3072


def extract_token_layer():
    """The registered layer class (defined lazily so importing emorec.models needs no Keras)."""
    import keras

    global _ExtractToken
    if _ExtractToken is None:
        @keras.saving.register_keras_serializable(package="emorec", name="ExtractToken")
        class ExtractToken(keras.layers.Layer):
            """The class token's embedding: position 0 of the sequence."""

            def call(self, inputs):
                return inputs[:, 0]

            def compute_output_shape(self, input_shape):
                return (input_shape[0], input_shape[-1])

        _ExtractToken = ExtractToken
    return _ExtractToken


_ExtractToken = None


def register_layers() -> None:
    """Make the ViT layers known to Keras' deserializer (vit-keras registers its own on import)."""
    extract_token_layer()
    import vit_keras.layers  # noqa: F401


def vit_backbone(image_size: tuple[int, int], patch: int, dropout: float = 0.1):
    """vit-keras' `build_model(include_top=False)` without its Lambda layer."""
    import keras
    from vit_keras import layers as vit_layers

    inputs = keras.Input(shape=(image_size[0], image_size[1], 3))
    y = keras.layers.Conv2D(HIDDEN, patch, strides=patch, padding="valid", name="embedding")(inputs)
    y = keras.layers.Reshape((y.shape[1] * y.shape[2], HIDDEN))(y)
    y = vit_layers.ClassToken(name="class_token")(y)
    y = vit_layers.AddPositionEmbs(name="Transformer_posembed_input")(y)
    for n in range(LAYERS):
        y, _ = vit_layers.TransformerBlock(num_heads=HEADS, mlp_dim=MLP_DIM, dropout=dropout,
                                           name=f"Transformer_encoderblock_{n}")(y)
    y = keras.layers.LayerNormalization(epsilon=1e-6, name="Transformer_encoder_norm")(y)
    y = extract_token_layer()(name="ExtractToken")(y)
    return keras.Model(inputs, y, name=f"vit-b{patch}")


def _builder(patch: int):
    def build(input_shape, num_classes, weights=None, fine_tune=True, dense_units=256, dropout=0.1):
        from keras import layers
        from vit_keras import utils as vit_utils

        pretrained = weights is not None and weights.pretrained

        def features(x):
            x = input_scaling(x, "tf", input_shape[-1])
            backbone = vit_backbone(tuple(input_shape[:2]), patch)
            if pretrained:  # our own resolved file, never vit-keras' implicit download
                vit_utils.load_weights_numpy(
                    model=backbone, params_path=str(weights.path), pretrained_top=False,
                    num_x_patches=input_shape[1] // patch, num_y_patches=input_shape[0] // patch)
            return backbone(x)

        def head(x):
            x = layers.BatchNormalization(name="bn1")(x)
            x = layers.Dense(dense_units, activation="gelu", name="dense")(x)
            x = layers.BatchNormalization(name="bn2")(x)
            x = layers.Dropout(dropout, name="dropout")(x)
            return softmax_output(x, num_classes)

        return features_and_head(input_shape, features, head, f"vit_b{patch}",
                                 trainable_features=not (pretrained and not fine_tune))

    return build


for _patch in (16, 32):
    register(ModelSpec(f"vit_b{_patch}", _builder(_patch), min_input_size=_patch, channels=3,
                       patch_size=_patch, pretrainable=True, backend_neutral=False,
                       custom_layers=register_layers,
                       description=f"ViT-B/{_patch} (vit-keras layers), paper §IV.F.6: BN + Dense head, RAdam"))
