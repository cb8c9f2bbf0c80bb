"""DVC stage `choose`: which registered champion real time uses by default (`infer.model:
auto`). Each champion is scored on the union of the validation splits (the combined
dataset's validation faces: every source's own), over the classes it shares with them;
the best macro-F1 wins. Never the test split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files, grid
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.errors import EmorecError


def run(params: dict | None = None, root: Path | None = None) -> Path:
    from emorec.evaluation.cross_dataset import restrict
    from emorec.evaluation.metrics import compute_metrics
    from emorec.experiments import registry, tracking
    from emorec.inference.classifier import Classifier

    params = params or load_params()
    paths = Paths(root or project_root())
    from emorec.config import DEFAULT_MODEL_FILE

    out = paths.root / DEFAULT_MODEL_FILE
    union = grid.combined_name(params)
    if not union or prepared.missing_reason(paths.prepared(union)) or not (paths.prepared(union) / "val.npz").exists():
        raise EmorecError(f"{paths.prepared(union or 'combined')}: the union of the validation splits is the "
                          "combined dataset's val part; run the combine stage first")
    x_val, y_val, classes = prepared.load_part(paths.prepared(union), "val")
    tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    scores = {}
    for decision_file in sorted((paths.root / "reports" / "registry").glob("*.json")):
        decision = files.read_json(decision_file)
        if "skipped" in decision or "model_name" not in decision:
            continue
        uri = f"models:/{decision['model_name']}@{registry.CHAMPION}"
        classifier = Classifier(uri)
        probs = np.concatenate([classifier.predict_faces(list(x_val[i:i + 512])) for i in range(0, len(x_val), 512)])
        y_true, y_pred, shared = restrict(probs, y_val, list(classifier.classes), list(classes))
        m = compute_metrics(y_true, y_pred, tuple(shared))
        scores[uri] = {"dataset": decision["dataset"], "macro_f1": round(m["macro_f1"], 4),
                       "accuracy": round(m["accuracy"], 4), "n": m["n"], "shared_classes": list(shared)}
        print(f"{uri}: union of validation splits ({m['n']} faces, {len(shared)} classes): "
              f"macro-F1 {m['macro_f1']:.4f}, accuracy {m['accuracy']:.4f}")
    if not scores:
        raise EmorecError(f"{paths.root / 'reports' / 'registry'}: no registered champion; run register first")
    best = max(scores, key=lambda u: (scores[u]["macro_f1"], scores[u]["accuracy"]))
    files.write_json(out, {"model": best, "chosen_by": "macro-F1 on the union of the validation splits",
                           "validation_faces": int(len(y_val)), "scores": scores})
    print(f"default model for real time: {best}")
    return out
