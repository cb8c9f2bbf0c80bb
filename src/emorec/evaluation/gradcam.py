"""Grad-CAM heatmaps (Selvaraju et al.) and feature-map grids, as in the paper's Figs. 7-8.

Works for the flat CNN / ResNet18 and for the two-part models (`features` -> `head`):
there the heatmap is taken on the backbone's output feature map, the last place the
face still has a spatial layout before the head. Uses TensorFlow's GradientTape, so the
explain stage runs with the TensorFlow backend.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec.errors import EmorecError


def _is_spatial(layer) -> bool:
    shape = getattr(layer, "output", None)
    shape = getattr(shape, "shape", None)
    return shape is not None and len(shape) == 4 and shape[1] > 1


def last_conv_layer(model) -> str:
    """Name of the last layer with a spatial (H x W x C, H > 1) output in a flat model."""
    for layer in reversed(model.layers):
        if _is_spatial(layer) and type(layer).__name__ != "InputLayer":
            return layer.name
    raise EmorecError(f"model {model.name!r} has no convolutional feature map for Grad-CAM")


def gradcam(model, images: np.ndarray, class_ids: np.ndarray | None = None,
            layer: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps in [0, 1] at input resolution, and the predicted probabilities.

    images: model input (float32, N x H x W x C). class_ids: the class to explain per image
    (default: the predicted one)."""
    import cv2
    import keras
    import tensorflow as tf

    x = tf.convert_to_tensor(images)
    names = {lay.name for lay in model.layers}
    if {"features", "head"} <= names:
        features, head = model.get_layer("features"), model.get_layer("head")
        with tf.GradientTape() as tape:
            fmap = features(x, training=False)
            tape.watch(fmap)
            probs = head(fmap, training=False)
            ids = probs.numpy().argmax(1) if class_ids is None else class_ids
            score = tf.gather(probs, ids, batch_dims=1)
    else:
        name = layer or last_conv_layer(model)
        grad_model = keras.Model(model.inputs, [model.get_layer(name).output, model.output])
        with tf.GradientTape() as tape:
            fmap, probs = grad_model(x, training=False)
            ids = probs.numpy().argmax(1) if class_ids is None else class_ids
            score = tf.gather(probs, ids, batch_dims=1)
    grads = tape.gradient(score, fmap)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * fmap, axis=-1)).numpy()
    out = np.zeros(images.shape[:3], np.float32)
    for i, c in enumerate(cam):
        c = c / c.max() if c.max() > 0 else c
        out[i] = cv2.resize(c, (images.shape[2], images.shape[1]), interpolation=cv2.INTER_LINEAR)
    return out, probs.numpy()


def _sub_activations(model, path: list[str], x):
    """Output of the layer at `path` (names through nested models) for input x. Nested
    models must sit in a chain (each fed by the layer listed just before it), as ours do."""
    import keras

    name, rest = path[0], path[1:]
    layer = model.get_layer(name)
    if not rest:
        return keras.Model(model.inputs, layer.output)(x, training=False)
    index = [lay.name for lay in model.layers].index(name)
    inner_x = x
    for before in model.layers[:index]:
        if type(before).__name__ != "InputLayer":
            inner_x = before(inner_x, training=False)
    return _sub_activations(layer, rest, inner_x)


def feature_maps(model, image: np.ndarray, layer_path: str, n: int = 16) -> np.ndarray:
    """The first n channels of one layer's activation for one image: (n, h, w)."""
    try:
        act = _sub_activations(model, layer_path.split("/"), image[None])
    except ValueError as exc:
        raise EmorecError(f"explain: no layer {layer_path!r} in model {model.name!r} ({exc})") from exc
    act = np.asarray(act)[0]
    if act.ndim != 3:
        raise EmorecError(f"explain: layer {layer_path!r} has no spatial output (shape {act.shape})")
    return np.moveaxis(act[..., :n], -1, 0)


def pick_examples(y_true: np.ndarray, y_pred: np.ndarray, per_class: int, seed: int) -> list[tuple[int, bool]]:
    """Up to `per_class` correct and `per_class` misclassified test images per true class."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in np.unique(y_true):
        for correct in (True, False):
            idx = np.flatnonzero((y_true == c) & ((y_pred == c) == correct))
            for i in rng.permutation(idx)[:per_class]:
                picks.append((int(i), correct))
    return picks


def gradcam_figure(faces: np.ndarray, cams: np.ndarray, titles: list[str], path: Path, title: str,
                   columns: int = 8) -> None:
    """Face and heatmap overlay side by side for each example, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emorec import files

    n = len(faces)
    rows = int(np.ceil(n / (columns // 2)))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.3, rows * 1.5), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, columns // 2)
        face = faces[i].squeeze()
        cmap = "gray" if face.ndim == 2 else None
        axes[r, 2 * c].imshow(face, cmap=cmap, vmin=0, vmax=1)   # no contrast stretch
        axes[r, 2 * c].set_title(titles[i], fontsize=6)
        axes[r, 2 * c + 1].imshow(face, cmap=cmap, vmin=0, vmax=1)
        axes[r, 2 * c + 1].imshow(cams[i], cmap="jet", alpha=0.45, vmin=0, vmax=1)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=85, format="png")
    plt.close(fig)


def feature_map_figure(face: np.ndarray, maps: dict[str, np.ndarray], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from emorec import files

    cols = max(m.shape[0] for m in maps.values()) + 1
    fig, axes = plt.subplots(len(maps), cols, figsize=(cols * 0.9, len(maps) * 1.1), squeeze=False)
    for r, (name, m) in enumerate(maps.items()):
        for ax in axes[r]:
            ax.axis("off")
        axes[r, 0].imshow(face.squeeze(), cmap="gray" if face.shape[-1] == 1 else None, vmin=0, vmax=1)
        axes[r, 0].set_title(name.split("/")[-1], fontsize=6)
        for j, ch in enumerate(m):
            axes[r, j + 1].imshow(ch, cmap="viridis")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with files.atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
