"""Scoring what the standalone runner trained (the GPU profile, the recipe runs): its
weights come back without the test split, and are scored here, where the test split
lives, with the evaluate stage's own measures (temperature fitted on validation, ECE,
test-time augmentation, PrivateTest/PublicTest, shrunk faces).

    python -m emorec.training.recipe_report RESULTS_DIR [RESULTS_DIR ...] --out reports/recipe
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emorec import files


def score_run(result: dict, weights: Path, prepared: Path, params: dict, figure: Path) -> dict:
    """Test-split figures of one standalone run, from its weights file."""
    from emorec import models
    from emorec.data import prepared as prep
    from emorec.data.preprocess import InputSpec, to_model_input
    from emorec.evaluation import scoring
    from emorec.evaluation.metrics import compute_metrics

    spec = InputSpec.from_dict(result["input_spec"])
    model = models.build(result["model"], (spec.size, spec.size, spec.channels), len(spec.classes), **result["arch"])
    model.load_weights(str(weights))
    x_test, y_test, classes = prep.load_part(prepared, "test")
    x_val, y_val, _ = prep.load_part(prepared, "val")

    def predict(faces):
        return model.predict(to_model_input(faces, spec), batch_size=256, verbose=0)

    settings = params.get("evaluate") or {}
    test_probs = predict(x_test)
    test = compute_metrics(y_test, test_probs.argmax(1), classes)
    extra = scoring.score(predict, x_val, y_val, x_test, y_test, test_probs, prep.load_ids(prepared, "test"), classes,
                          settings.get("tta") or "ten", list(settings.get("face_sizes") or [16, 24, 32]),
                          figure, f"{result['name']}: test reliability")
    return {"test": {k: round(test[k], 4) for k in ("accuracy", "macro_f1")}, **extra}


def change(run: dict) -> str:
    """What the run changes: its plan's `set:` over the scope's recipe (cpu: the default run's)."""
    sets = ", ".join(f"{k}={v}" for k, v in (run.get("set") or {}).items())
    return f"{run.get('scope', 'gpu')} recipe" + (f"; {sets}" if sets else "")


def markdown(rows: list[dict]) -> str:
    lines = ["| run | change | hardware | epochs (best) | val accuracy | test accuracy | PrivateTest | macro-F1 | "
             "TTA (ten views) | ECE raw -> scaled (T) | 16 / 24 / 32 px | img/s | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.get("scored")
        if not s:
            lines.append(f"| {r['name']} | {change(r)} | {r['hardware']} | {r['epochs_run']} ({r['best_epoch']}) | "
                         f"{r['val_accuracy']:.4f} | not scored (weights not kept) | | | | | | "
                         f"{r['images_per_second']:.0f} | {r['seconds'] / 60:.1f} |")
            continue
        cal = s["calibration"]
        sizes = " / ".join(f"{v:.3f}" for v in s["face_size"].values())
        lines.append(
            f"| {r['name']} | {change(r)} | {r['hardware']} | {r['epochs_run']} ({r['best_epoch']}) | {r['val_accuracy']:.4f} | "
            f"{s['test']['accuracy']:.4f} | {s['subsets'].get('PrivateTest', {}).get('accuracy', float('nan')):.4f} | "
            f"{s['test']['macro_f1']:.4f} | {s['tta']['accuracy']:.4f} (PrivateTest "
            f"{s['tta']['subsets'].get('PrivateTest', {}).get('accuracy', float('nan')):.4f}) | "
            f"{cal['ece']['test_raw']:.3f} -> {cal['ece']['test_scaled']:.3f} ({cal['temperature']:.2f}) | {sizes} | "
            f"{r['images_per_second']:.0f} | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from emorec.config import load_params

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, nargs="+", help="folders holding results.json and *.weights.h5")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared/fer2013"))
    ap.add_argument("--out", type=Path, default=Path("reports/recipe"))
    args = ap.parse_args(argv)
    params = load_params()
    rows = []
    for folder in args.results:
        for result in json.loads((folder / "results.json").read_text()):
            if "skipped" in result:
                continue
            weights = folder / f"{result['name']}.weights.h5"
            if weights.is_file():
                result["scored"] = score_run(result, weights, args.prepared, params,
                                             args.out / f"{result['name']}-reliability.png")
                print(f"{result['name']}: test {result['scored']['test']['accuracy']:.4f}", flush=True)
            rows.append({k: v for k, v in result.items() if k != "val_accuracy_per_epoch"}
                        | {"val_accuracy_per_epoch": [round(a, 4) for a in result["val_accuracy_per_epoch"]]})
    files.write_json(args.out / "runs.json", rows)
    files.write_text(args.out / "runs.md", markdown(rows) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
