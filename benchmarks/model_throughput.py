"""Training and inference throughput of registered models on this machine.

Prints one table row per model: parameters, train img/s (fit on random data, after a
warm-up epoch) and inference img/s (predict, batch 256). Figures are for planning the
default run's time budget; run it on an otherwise idle machine:

    python benchmarks/model_throughput.py [--models cnn] [--images 4096]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def measure(name: str, size: int, channels: int, n_images: int, batch: int, arch: dict) -> dict:
    import keras

    from emorec import models

    model = models.build(name, (size, size, channels), 7, **arch)
    model.compile(optimizer="rmsprop", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((n_images, size, size, channels), dtype=np.float32)
    y = rng.integers(0, 7, n_images)
    model.fit(x[: batch * 4], y[: batch * 4], batch_size=batch, epochs=1, verbose=0)  # warm-up
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    train_ips = n_images / (time.perf_counter() - start)
    model.predict(x[:256], batch_size=256, verbose=0)
    start = time.perf_counter()
    model.predict(x, batch_size=256, verbose=0)
    infer_ips = n_images / (time.perf_counter() - start)
    keras.backend.clear_session()
    return {"model": name, "input": f"{size}x{size}x{channels}", "params": model.count_params(),
            "train_img_s": train_ips, "infer_img_s": infer_ips}


def main() -> None:
    from emorec.config import load_params, project_root

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=None, help="default: the grid in params.yaml")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    params = load_params(project_root() / "params.yaml")
    names = args.models or params["grid"]["models"]
    print(f"{'model':<12} {'input':<10} {'params':>10} {'train img/s':>12} {'infer img/s':>12}")
    for name in names:
        cfg = params["models"].get(name, {})
        row = measure(name, cfg.get("input_size", 48), cfg.get("channels", 1), args.images,
                      args.batch, dict(cfg.get("arch", {})))
        print(f"{row['model']:<12} {row['input']:<10} {row['params']:>10,} "
              f"{row['train_img_s']:>12.0f} {row['infer_img_s']:>12.0f}")
    print(f"({os.cpu_count()} CPU cores; epoch time = training images / train img/s)")


if __name__ == "__main__":
    main()
