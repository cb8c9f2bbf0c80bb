"""Parameters, FLOPs per image, and training / inference images per second of every
registered model on this machine, at the input size params.yaml gives it.

One row per model. Training img/s is measured the way the trainer runs the model: end
to end, or for a frozen pretrained backbone the head on cached features (plus the
one-off feature pass, shown separately). FLOPs are TensorFlow's profiler count of one
forward pass (multiply-adds x 2). Run on an otherwise idle machine:

    python benchmarks/model_throughput.py [--models cnn resnet18] [--images 1024]

The throughput levers, one row per combination (ratios only within one run):

    python benchmarks/model_throughput.py --models cnn --batch 64 128 256 \
        --precision float32 mixed_bfloat16 --jit-compile auto false

An architecture variant: `--arch convs_per_block=2` (keys of the model's `arch` params).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def forward_flops(model, shape) -> float | None:
    """FLOPs of one forward pass for one image (TensorFlow backend only)."""
    try:
        import tensorflow as tf
        from tensorflow.python.framework.convert_to_constants import (
            convert_variables_to_constants_v2,
        )
        from tensorflow.python.profiler.model_analyzer import profile
        from tensorflow.python.profiler.option_builder import ProfileOptionBuilder

        fn = tf.function(lambda x: model(x, training=False))
        concrete = fn.get_concrete_function(tf.TensorSpec((1, *shape), tf.float32))
        graph = convert_variables_to_constants_v2(concrete).graph
        opts = ProfileOptionBuilder(ProfileOptionBuilder.float_operation()).with_empty_output().build()
        return float(profile(graph, options=opts).total_float_ops)
    except Exception as exc:  # profiler internals differ between TF builds
        print(f"  (no FLOPs count: {type(exc).__name__}: {exc})")
        return None


def measure(name: str, size: int, channels: int, n_images: int, batch: int, arch: dict,
            precision: str = "float32", jit_compile="auto") -> dict:
    import keras

    from emorec import models
    from emorec.training import fit as training

    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy(precision)
    model = models.build(name, (size, size, channels), 7, **arch)   # from scratch
    rng = np.random.default_rng(0)
    x = rng.random((n_images, size, size, channels), dtype=np.float32)
    y = rng.integers(0, 7, n_images)
    flops = forward_flops(model, (size, size, channels))
    frozen = training.frozen_parts(model)
    trained, data = model, x
    feature_ips = None
    if frozen is not None:
        start = time.perf_counter()
        data = frozen[0].predict(x, batch_size=256, verbose=0)
        feature_ips = n_images / (time.perf_counter() - start)
        trained = frozen[1]
    trained.compile(optimizer="adam", loss="sparse_categorical_crossentropy", jit_compile=jit_compile)
    warm = min(len(data), batch * 2)
    trained.fit(data[:warm], y[:warm], batch_size=batch, epochs=1, verbose=0)
    start = time.perf_counter()
    trained.fit(data, y, batch_size=batch, epochs=1, verbose=0)
    train_ips = n_images / (time.perf_counter() - start)
    model.predict(x[:64], batch_size=64, verbose=0)
    start = time.perf_counter()
    model.predict(x, batch_size=256, verbose=0)
    infer_ips = n_images / (time.perf_counter() - start)
    row = {"model": name, "input": f"{size}x{size}x{channels}", "params": model.count_params(),
           "flops": flops, "train_img_s": train_ips, "infer_img_s": infer_ips,
           "feature_img_s": feature_ips}
    keras.backend.clear_session()
    keras.mixed_precision.set_global_policy("float32")
    return row


def main() -> None:
    from emorec import models
    from emorec.config import apply_overrides, load_params, project_root
    from emorec.errors import EmorecError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    parser.add_argument("--images", type=int, default=1024)
    parser.add_argument("--batch", type=int, nargs="+", default=[64])
    parser.add_argument("--precision", nargs="+", default=["float32"],
                        choices=["float32", "mixed_bfloat16", "mixed_float16"], help="Keras dtype policies")
    parser.add_argument("--jit-compile", nargs="+", default=["auto"], choices=["auto", "true", "false"],
                        help="XLA compilation of the training step")
    parser.add_argument("--scope", choices=["cpu", "full"], default="cpu",
                        help="input sizes of the CPU grid (default) or the paper's")
    parser.add_argument("--arch", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override a key of the model's arch params, e.g. convs_per_block=2")
    args = parser.parse_args()
    try:   # the parser `emorec -S` and plan rows use, on the arch params alone
        overrides = apply_overrides({}, args.arch)
    except EmorecError as exc:
        parser.error(f"--arch: {exc}")
    params = load_params(project_root() / "params.yaml")
    names = args.models or models.available()
    print(f"{'model':<17} {'input':<11} {'precision':<15} {'jit':<5} {'batch':>5} {'params':>12} {'GFLOPs':>8} "
          f"{'train img/s':>12} {'infer img/s':>12} {'features img/s':>15}")
    jit_values = {"auto": "auto", "true": True, "false": False}
    for name in names:
        cfg = dict(params["models"].get(name, {}))
        if args.scope == "cpu":
            cfg.update({k: v for k, v in (cfg.get("cpu") or {}).items() if k != "cells"})
        spec = models.get(name)
        size = cfg.get("input_size") or 48
        channels = cfg.get("channels") or spec.channels or 1
        for precision in args.precision:
            for jit in args.jit_compile:
                for batch in args.batch:
                    arch = {**(cfg.get("arch") or {}), **overrides}
                    row = measure(name, size, channels, args.images, batch, arch, precision, jit_values[jit])
                    gflops = f"{row['flops'] / 1e9:.3f}" if row["flops"] else "n/a"
                    feats = f"{row['feature_img_s']:.0f}" if row["feature_img_s"] else "-"
                    print(f"{row['model']:<17} {row['input']:<11} {precision:<15} {jit:<5} {batch:>5} "
                          f"{row['params']:>12,} {gflops:>8} {row['train_img_s']:>12.0f} "
                          f"{row['infer_img_s']:>12.0f} {feats:>15}", flush=True)
    print(f"({os.cpu_count()} CPU cores, {args.images} random images; "
          f"epoch time = training images / train img/s)")


if __name__ == "__main__":
    main()
