"""DVC stage `pca@<dataset>`: per-channel PCA reconstruction (paper §IV.B)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files, grid
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared


def run(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Per-channel PCA reconstruction of a prepared dataset -> data/prepared/<dataset>_pca."""
    from emorec.data import pca

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "pca")
    seed = int(section(params, "seed"))
    source = paths.prepared(dataset)
    out = paths.prepared(dataset + grid.PCA_SUFFIX)
    report_path = paths.root / "reports" / "pca" / f"{dataset}.json"
    grid_png = paths.root / "reports" / "figures" / f"{dataset}_pca_samples.png"
    reason = prepared.missing_reason(source)
    if reason:
        with files.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            files.write_json(tmp / prepared.MISSING_MARKER, {"reason": reason})
        files.write_json(report_path, {"dataset": dataset, "skipped": reason})
        prepared.write_placeholders(reason, [grid_png])
        print(f"{dataset}: PCA skipped ({reason})")
        return out
    x_train, _, _ = prepared.load_part(source, "train")
    model = pca.fit(x_train, cfg["variance"], cfg["max_components"], cfg["fit_samples"], seed)
    errors = {}
    with files.atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for part in ("train", "train_balanced", "val", "test"):
            data = files.load_npz(source / f"{part}.npz")
            data["images"], errors[part] = pca.reconstruct(model, data["images"], cfg.get("output_size"))
            with open(tmp / f"{part}.npz", "wb") as fh:
                np.savez(fh, **data)
    test_before = files.load_npz(source / "test.npz")["images"][:8]
    test_after = files.load_npz(out / "test.npz")["images"][:8]
    pca.sample_grid(test_before, test_after, grid_png,
                    f"{dataset}: test faces before (top) and after per-channel PCA "
                    f"({cfg['variance']:.0%} variance), resized to {cfg.get('output_size') or 'input size'}")
    summary = {"dataset": dataset, "variance_target": cfg["variance"], "fit_samples": min(
        cfg["fit_samples"], len(x_train)), "input_size": model.size,
        "output_size": cfg.get("output_size") or model.size, "channels": model.summary(),
        "reconstruction_mse": {k: round(v, 6) for k, v in errors.items()}, "seed": seed}
    files.write_json(report_path, summary)
    kept = ", ".join(f"{c['components']} ({c['explained_variance']:.3f})" for c in model.summary())
    print(f"{dataset}: PCA components kept per channel (explained variance): {kept}; test MSE "
          f"{errors['test']:.5f} -> {out.relative_to(paths.root)}")
    return out
