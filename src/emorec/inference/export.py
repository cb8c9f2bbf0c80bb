"""Exporting a model to .keras, SavedModel, TFLite (float32 and dynamic-range quantized)
and ONNX, each checked against the Keras model on a real test batch."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from emorec.errors import EmorecError

QUANTIZATIONS = ("float16", "dynamic_range")
FORMATS = ("keras", "saved_model", "tflite_float32", "tflite_float16", "tflite_dynamic_range", "onnx")
QUANTIZED = {"tflite_float16", "tflite_dynamic_range"}
MIN_AGREEMENT = {"quantized": 0.995, "float": 0.999}


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def export_all(model, out_dir: Path, quantization: str = "float16") -> dict[str, Path]:
    """Write every format into out_dir (which must not exist yet); the quantized TFLite
    variant is float16 weights or dynamic-range int8 weights."""
    import tensorflow as tf

    if quantization not in QUANTIZATIONS:
        raise EmorecError(f"params.yaml: export.quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    out_dir.mkdir(parents=True)
    quantized = f"tflite_{quantization}"
    paths = {"keras": out_dir / "model.keras", "saved_model": out_dir / "saved_model",
             "tflite_float32": out_dir / "model_float32.tflite",
             quantized: out_dir / f"model_{quantization}.tflite", "onnx": out_dir / "model.onnx"}
    model.save(paths["keras"])
    model.export(str(paths["saved_model"]), format="tf_saved_model", verbose=False)
    for name in ("tflite_float32", quantized):
        converter = tf.lite.TFLiteConverter.from_saved_model(str(paths["saved_model"]))
        if name != "tflite_float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            if quantization == "float16":
                converter.target_spec.supported_types = [tf.float16]
        paths[name].write_bytes(converter.convert())
    model.export(str(paths["onnx"]), format="onnx", verbose=False)
    return paths


class Runner:
    """Batch prediction with one exported format, loaded once.

    `threads`: intra-op threads for ONNX Runtime and TFLite (None: their defaults, all
    cores). The real-time loop passes 1: it classifies one or a few faces per frame, and
    ONNX Runtime's default busy-waiting threads would take the cores the detector needs."""

    def __init__(self, fmt: str, path: Path, threads: int | None = None):
        self.fmt = fmt
        if fmt == "keras":
            from emorec.models import loading

            self.model = loading.load_file(path)
        elif fmt == "saved_model":
            import tensorflow as tf

            self.model = tf.saved_model.load(str(path))
        elif fmt.startswith("tflite"):
            import tensorflow as tf

            self.interpreter = tf.lite.Interpreter(model_path=str(path), num_threads=threads or os.cpu_count())
            self.batch = None
        elif fmt == "onnx":
            import onnxruntime as ort

            options = ort.SessionOptions()
            if threads:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            self.input_name = self.session.get_inputs()[0].name
        else:
            raise EmorecError(f"unknown export format {fmt!r}; known: {FORMATS}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.fmt == "keras":
            return np.asarray(self.model.predict_on_batch(x))   # compiled step, as the real-time loop uses
        if self.fmt == "saved_model":
            return np.asarray(self.model.serve(x))
        if self.fmt == "onnx":
            return self.session.run(None, {self.input_name: x})[0]
        it = self.interpreter
        inp = it.get_input_details()[0]
        if self.batch != len(x):
            it.resize_tensor_input(inp["index"], list(x.shape))
            it.allocate_tensors()
            self.batch = len(x)
        it.set_tensor(inp["index"], x)
        it.invoke()
        return it.get_tensor(it.get_output_details()[0]["index"])


def check(paths: dict[str, Path], reference: np.ndarray, x: np.ndarray, latency_runs: int = 100,
          batch: int = 256, min_agreement: dict | None = None) -> dict[str, dict]:
    """Per format: max |p - p_keras|, top-1 agreement, size, median batch-1 latency."""
    required = {**MIN_AGREEMENT, **(min_agreement or {})}
    results = {}
    ref_top1 = reference.argmax(1)
    for fmt, path in paths.items():
        runner = Runner(fmt, path)
        probs = np.concatenate([runner(x[i:i + batch]) for i in range(0, len(x), batch)])
        single = x[:1]
        for _ in range(5):
            runner(single)
        times = []
        for _ in range(latency_runs):
            start = time.perf_counter()
            runner(single)
            times.append(time.perf_counter() - start)
        kind = "quantized" if fmt in QUANTIZED else "float"
        agreement = float((probs.argmax(1) == ref_top1).mean())
        results[fmt] = {"size_bytes": _size(path), "max_abs_diff": float(np.abs(probs - reference).max()),
                        "top1_agreement": agreement, "required_agreement": required[kind],
                        "passed": agreement >= required[kind],
                        "latency_ms_batch1_median": float(np.median(times) * 1000),
                        "latency_ms_batch1_p90": float(np.percentile(times, 90) * 1000)}
    return results


def report_markdown(name: str, version: str, results: dict[str, dict], n: int, source: str) -> str:
    fastest = min(results, key=lambda f: results[f]["latency_ms_batch1_median"])
    lines = [f"# Export of {name} v{version} (champion)", "",
             f"Checked on {n} real test images ({source}) against the Keras model; latency is the "
             f"median of batch-1 calls on this machine's CPU ({os.cpu_count()} cores).", "",
             "| format | size (KB) | max abs diff | top-1 agreement | required | latency ms (median / p90) | check |",
             "|---|---|---|---|---|---|---|"]
    for fmt, r in results.items():
        lines.append(f"| {fmt} | {r['size_bytes'] / 1024:.0f} | {r['max_abs_diff']:.2e} | "
                     f"{r['top1_agreement']:.4f} | {r['required_agreement']} | "
                     f"{r['latency_ms_batch1_median']:.3f} / {r['latency_ms_batch1_p90']:.3f} | "
                     f"{'pass' if r['passed'] else 'FAIL'} |")
    lines += ["", f"Fastest here for single faces: **{fastest}**.", ""]
    return "\n".join(lines)


def replace_dir(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(src, dst)
