"""DVC stage `cross_dataset`: grid models scored on another dataset's test split."""

from __future__ import annotations

from pathlib import Path

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared


def run(params: dict | None = None, root: Path | None = None) -> Path:
    """Each listed grid model scored on another dataset's test split, shared classes only."""
    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.evaluation import cross_dataset as transfer
    from emorec.evaluation import metrics as evaluation
    from emorec.models.loading import load_model

    params = params or load_params()
    paths = Paths(root or project_root())
    rows = []
    for pair in section(params, "cross_dataset"):
        dataset, model, balance = grid.Run.parse(pair["model"])
        test_ds = pair["test"]
        run_name = paths.run_name(dataset, model, balance)
        reason = (runs.not_trained(params, paths.root, grid.Run(dataset, model, balance))
                  or prepared.missing_reason(paths.prepared(test_ds)))
        if reason:
            rows.append({"model": run_name, "test": test_ds, "skipped": reason})
            continue
        keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
        spec = InputSpec.from_dict(meta["input_spec"])
        x, y, data_classes = prepared.load_part(paths.prepared(test_ds), "test")
        probs = keras_model.predict(to_model_input(x, spec), batch_size=256, verbose=0)
        y_true, y_pred, shared = transfer.restrict(probs, y, list(spec.classes), list(data_classes))
        m = evaluation.compute_metrics(y_true, y_pred, shared)
        own = files.read_json(paths.evaluation_dir(dataset, model, balance) / "evaluation.json")
        rows.append({"model": run_name, "trained_on": dataset, "test": test_ds, "classes": list(shared),
                     "accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "n": m["n"],
                     "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()},
                     "own_test_accuracy": own["test"]["accuracy"], "own_test_macro_f1": own["test"]["macro_f1"],
                     "weights": meta["weights"], "seed": section(params, "seed")})
        print(f"{run_name} on {test_ds} ({len(shared)} shared classes): accuracy {m['accuracy']:.4f}, "
              f"macro-F1 {m['macro_f1']:.4f} (own test {own['test']['accuracy']:.4f})")
    from emorec.reporting import tables as report

    out = paths.root / "reports" / "cross_dataset.json"
    files.write_json(out, {"rows": rows})
    files.write_text(out.with_suffix(".md"), report.cross_dataset_markdown(rows))
    return out
