"""ViT-B16 and ViT-B32 through vit-keras (paper §IV.F.6): the transformer without its top,
then BatchNorm + Dense head and softmax, trained with Rectified Adam. vit-keras holds
Lambda layers, so these two (and only these) load with Keras safe mode off."""

from __future__ import annotations

from emorec.models import ModelSpec, register
from emorec.models.parts import features_and_head, input_scaling, softmax_output


def _builder(patch: int):
    def build(input_shape, num_classes, weights=None, fine_tune=True, dense_units=256, dropout=0.1):
        from keras import layers
        from vit_keras import utils as vit_utils
        from vit_keras import vit

        pretrained = weights is not None and weights.pretrained

        def features(x):
            x = input_scaling(x, "tf", input_shape[-1])
            make = vit.vit_b16 if patch == 16 else vit.vit_b32
            backbone = make(image_size=tuple(input_shape[:2]), include_top=False,
                            pretrained=False, pretrained_top=False)
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
                       patch_size=_patch, pretrainable=True, safe_mode=False, backend_neutral=False,
                       description=f"ViT-B/{_patch} (vit-keras), paper §IV.F.6: BN + Dense head, RAdam"))
