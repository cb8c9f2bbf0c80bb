"""DVC stage `export@<dataset>`: the champion to Keras, SavedModel, TFLite and ONNX, each checked against Keras."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files, grid
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.errors import EmorecError


def run(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Export the champion of emorec-<dataset> to every format and check each against Keras."""
    import mlflow

    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.experiments import registry, tracking
    from emorec.inference import export

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "export")
    grid.check_names(params, dataset)     # unknown names fail before anything is read
    name = registry.model_name(dataset)
    report_json = paths.root / "reports" / "export" / f"{dataset}.json"
    out = paths.root / "models" / "export" / dataset
    decision = files.read_json(paths.root / "reports" / "registry" / f"{dataset}.json")
    if "skipped" in decision:
        with files.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            files.write_json(tmp / prepared.MISSING_MARKER, {"reason": decision["skipped"]})
        files.write_json(report_json, {"dataset": dataset, "skipped": decision["skipped"]})
        files.write_text(report_json.with_suffix(".md"), f"# Export of {name}\n\nNot exported: {decision['skipped']}\n")
        print(f"{dataset}: nothing to export ({decision['skipped']})")
        return out
    tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    alias = cfg.get("alias", registry.CHAMPION)
    champion = registry.current_alias(name, alias)
    if champion is None:
        raise EmorecError(f"{name} has no {alias} in {tracking.tracking_uri(paths.root)}; run the "
                          "register stage or `emorec registry promote VERSION`")
    uri = f"models:/{name}@{alias}"
    try:
        carried = mlflow.artifacts.load_dict(f"runs:/{champion.run_id}/preprocessing.json")
        spec = InputSpec.from_dict(carried)
        model = tracking.load_logged_keras(uri)
    except Exception as exc:  # missing or damaged artifacts raise many types
        raise EmorecError(f"cannot load {uri} ({type(exc).__name__}: {str(exc)[:300]})") from exc
    x_test, _, _ = prepared.load_part(paths.prepared(dataset), "test")
    x = to_model_input(x_test[: int(cfg.get("parity_images", 1000))], spec)
    reference = np.asarray(model.predict(x, batch_size=256, verbose=0))
    with files.atomic_path(out) as tmp:
        exported = export.export_all(model, tmp, cfg.get("quantization", "float16"))
        results = export.check(exported, reference, x, latency_runs=int(cfg.get("latency_runs", 100)),
                               min_agreement=cfg.get("min_agreement"))
        # every export carries the softmax temperature evaluate fitted on validation
        files.write_json(tmp / "preprocessing.json", {**spec.to_dict(), **_temperature(carried)})
    files.write_json(report_json, {"dataset": dataset, "model_name": name, "version": str(champion.version),
                                "run_id": champion.run_id, "parity_images": len(x),
                                "input_spec": spec.to_dict(), **_temperature(carried), "formats": results})
    files.write_text(report_json.with_suffix(".md"), export.report_markdown(
        name, str(champion.version), results, len(x), f"{dataset} test split"))
    failed = [f for f, r in results.items() if not r["passed"]]
    summary = ", ".join(f"{f} {r['top1_agreement']:.4f}/{r['latency_ms_batch1_median']:.2f}ms"
                        for f, r in results.items())
    print(f"{dataset}: exported {name} v{champion.version}: {summary}")
    if failed:
        raise EmorecError(f"export parity failed for {', '.join(failed)}; see {report_json}")
    return out


def _temperature(carried: dict) -> dict:
    return {"temperature": carried["temperature"]} if "temperature" in carried else {}
