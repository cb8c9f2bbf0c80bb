"""DVC stage `explain`: Grad-CAM overlays and feature maps (paper Figs. 7-8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared


def run(params: dict | None = None, root: Path | None = None) -> Path:
    """Grad-CAM overlays and feature-map grids for chosen grid models (paper Figs. 7-8)."""
    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.evaluation import gradcam as explain
    from emorec.models.loading import load_model

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "explain")
    seed = int(section(params, "seed"))
    summary = {}
    for spec_name in cfg["runs"]:
        dataset, model, balance = grid.Run.parse(spec_name)
        run_name = paths.run_name(dataset, model, balance)
        out_dir = paths.root / "reports" / "explain" / run_name
        reason = runs.not_trained(params, paths.root, grid.Run(dataset, model, balance))
        if reason:
            prepared.write_placeholders(reason, [out_dir / "gradcam.png", out_dir / "feature_maps.png"])
            summary[run_name] = {"skipped": reason}
            continue
        keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
        spec = InputSpec.from_dict(meta["input_spec"])
        x, y, classes = prepared.load_part(paths.prepared(dataset), "test")
        inputs = to_model_input(x, spec)
        pred = keras_model.predict(inputs, batch_size=256, verbose=0).argmax(1)
        picks = explain.pick_examples(y, pred, int(cfg["per_class"]), seed)
        idx = np.array([i for i, _ in picks])
        cams, _ = explain.gradcam(keras_model, inputs[idx])
        titles = [f"{classes[y[i]]}->{classes[pred[i]]}" + ("" if ok else " (wrong)") for i, ok in picks]
        explain.gradcam_figure(inputs[idx], cams, titles, out_dir / "gradcam.png",
                               f"{run_name}: Grad-CAM on test faces, true->predicted "
                               f"({cfg['per_class']} correct + {cfg['per_class']} wrong per class)")
        layers = (cfg.get("feature_layers") or {}).get(model) or []
        if layers:
            first = int(idx[0])
            maps = {name: explain.feature_maps(keras_model, inputs[first], name, int(cfg.get("channels", 12)))
                    for name in layers}
            explain.feature_map_figure(inputs[first], maps, out_dir / "feature_maps.png",
                                       f"{run_name}: feature maps for one {classes[y[first]]} test face")
        else:
            prepared.write_placeholders(f"no explain.feature_layers.{model} in params.yaml",
                                [out_dir / "feature_maps.png"])
        summary[run_name] = {"examples": len(idx), "correct": int(sum(ok for _, ok in picks)),
                             "feature_layers": layers}
        print(f"{run_name}: Grad-CAM for {len(idx)} test faces -> {out_dir.relative_to(paths.root)}")
    out = paths.root / "reports" / "explain" / "explain.json"
    files.write_json(out, summary)
    return out
