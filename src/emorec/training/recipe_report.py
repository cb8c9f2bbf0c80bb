"""Scoring what the standalone runner trained (the GPU profile, the recipe runs): its
weights come back without the test split, and are scored here, where the test split
lives, with the evaluate stage's own measures (temperature fitted on validation, ECE,
test-time augmentation, PrivateTest/PublicTest, shrunk faces), and, with `--cross`,
on another dataset's test split over the classes both share (the cross_dataset stage's
measure), with the share of that set's neutral faces the model calls "sad".

    python -m emorec.training.recipe_report RESULTS_DIR [RESULTS_DIR ...] --out reports/recipe \
        [--cross data/prepared/affectnet] [--reuse]

`--reuse` keeps a row's figures from the existing `runs.json` when the weights, the test
splits and the scoring settings they were computed from are byte-for-byte the same (their
sha256 are recorded with the figures), so adding one run does not re-score the others.
`--ensemble NAME=RUN,RUN,...` adds a row for the mean softmax of those runs, scored the same
way, with its validation accuracy beside it: validation, not test, says whether it pays.
`--export DIR` writes each run with weights as `DIR/<run>/model.keras` (input spec and
temperature in `preprocessing.json` beside it), so a run can be used for inference or as a
distillation teacher member.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from emorec import files

PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def plain_name(name, where: str) -> str:
    """A run or ensemble name, which becomes part of file names here (weights, reliability
    figure, --export folder): refused unless it is a plain name, so none can point elsewhere."""
    if not PLAIN_NAME.fullmatch(str(name)):
        raise SystemExit(f"{where} names a run {name!r}, which is not a plain file name "
                         "(letters, digits, '.', '_', '-')")
    return str(name)


def run_model(result: dict, weights: Path):
    """(input spec, Keras model) of one standalone run: its architecture, its weights."""
    from emorec import models
    from emorec.data.preprocess import InputSpec

    spec = InputSpec.from_dict(result["input_spec"])
    model = models.build(result["model"], (spec.size, spec.size, spec.channels), len(spec.classes), **result["arch"])
    model.load_weights(str(weights))
    return spec, model


def cross_score(predict, model_classes, prepared: Path) -> dict:
    """Another dataset's test split, shared classes only (as the cross_dataset stage)."""
    from emorec.data import prepared as prep
    from emorec.evaluation import cross_dataset as transfer
    from emorec.evaluation.metrics import compute_metrics

    x, y, data_classes = prep.load_part(prepared, "test")
    y_true, y_pred, shared = transfer.restrict(predict(x), y, list(model_classes), list(data_classes))
    m = compute_metrics(y_true, y_pred, shared)
    row = {"dataset": prepared.name, "classes": len(shared), "n": m["n"],
           "accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4)}
    if "neutral" in shared and "sad" in shared:
        neutral = y_true == shared.index("neutral")
        row["neutral_called_sad"] = round(float((y_pred[neutral] == shared.index("sad")).mean()), 4)
        row["neutral_n"] = int(neutral.sum())
    return row


def member_predict(spec, model):
    """`predict(uint8 faces) -> softmax` of one model, through its own input spec."""
    from emorec.data.preprocess import to_model_input

    def predict(faces):
        return model.predict(to_model_input(faces, spec), batch_size=256, verbose=0)

    return predict


def score_predictions(predict, model_classes, name: str, prepared: Path, params: dict, figure: Path,
                      cross: Path | None = None) -> dict:
    """Test-split figures of any `predict` (one run, or an ensemble's mean softmax)."""
    from emorec.data import prepared as prep
    from emorec.evaluation import scoring
    from emorec.evaluation.metrics import compute_metrics

    x_test, y_test, classes = prep.load_part(prepared, "test")
    x_val, y_val, _ = prep.load_part(prepared, "val")
    settings = params.get("evaluate") or {}
    test_probs = predict(x_test)
    test = compute_metrics(y_test, test_probs.argmax(1), classes)
    extra = scoring.score(predict, x_val, y_val, x_test, y_test, test_probs, prep.load_ids(prepared, "test"), classes,
                          settings.get("tta") or "ten", list(settings.get("face_sizes") or [16, 24, 32]),
                          figure, f"{name}: test reliability")
    scored = {"test": {k: round(test[k], 4) for k in ("accuracy", "macro_f1")}, **extra}
    if cross is not None:
        scored["cross"] = cross_score(predict, model_classes, cross)
    return scored


def score_run(result: dict, weights: Path, prepared: Path, params: dict, figure: Path,
              cross: Path | None = None) -> dict:
    """Test-split figures of one standalone run, from its weights file."""
    spec, model = run_model(result, weights)
    return score_predictions(member_predict(spec, model), spec.classes, result["name"], prepared, params, figure, cross)


def ensemble_row(name: str, members: list, prepared: Path, params: dict, figure: Path,
                 cross: Path | None = None) -> dict:
    """A row for the mean softmax of `members` ([(result, weights file)]), scored like a run.
    Its validation accuracy is measured here, so validation can say whether it pays."""
    import numpy as np

    from emorec.data import prepared as prep

    loaded = [run_model(result, weights) for result, weights in members]
    classes = {tuple(spec.classes) for spec, _ in loaded}
    if len(classes) != 1:
        raise SystemExit(f"--ensemble {name}: its members do not share one class list ({sorted(classes)})")
    predicts = [member_predict(spec, model) for spec, model in loaded]

    x_val, y_val, _ = prep.load_part(prepared, "val")
    val_probs = np.mean([p(x_val) for p in predicts], axis=0)

    def predict(faces):              # the validation faces again (scoring's temperature fit): not re-run
        if faces.shape == x_val.shape and np.array_equal(faces, x_val):
            return val_probs
        return np.mean([p(faces) for p in predicts], axis=0)

    runs = [result for result, _ in members]
    return {"name": name, "model": "ensemble", "scope": "ensemble", "members": [r["name"] for r in runs],
            "hardware": " + ".join(sorted({r["hardware"] for r in runs})),
            "val_accuracy": float((val_probs.argmax(1) == y_val).mean()),
            "seconds": sum(r["seconds"] for r in runs), "images_per_second": None,
            "scored": score_predictions(predict, classes.pop(), name, prepared, params, figure, cross)}


def to_keras_file(result: dict, weights: Path, out_dir: Path) -> Path:
    """A standalone run as a `.keras` file with `preprocessing.json` beside it (its input
    spec, and the temperature recipe_report fitted on validation when it scored the run),
    so `emorec infer --model`, `EmotionRecognizer` and the benchmarks can load it."""
    spec, model = run_model(result, weights)
    temperature = ((result.get("scored") or {}).get("calibration") or {}).get("temperature", 1.0)
    with files.atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        model.save(tmp / "model.keras")
        files.write_json(tmp / "preprocessing.json", {**spec.to_dict(), "temperature": temperature})
    return out_dir / "model.keras"


def change(run: dict) -> str:
    """What the run changes: its plan's `set:` over the scope's recipe (cpu: the default run's)."""
    if run.get("model") == "ensemble":
        return f"mean softmax of {len(run['members'])} runs: {', '.join(run['members'])}"
    sets = ", ".join(f"{k}={v}" for k, v in (run.get("set") or {}).items())
    if teacher := run.get("teacher"):
        sets = ", ".join(filter(None, [sets, f"distilled from {Path(teacher['targets']).name} "
                                              f"(weight {teacher['weight']})"]))
    model = run.get("model", "cnn")   # the recipes are the CNN's; another model is named
    recipe = f"{run.get('scope', 'gpu')} recipe" + ("" if model == "cnn" else f" of {model}")
    return recipe + (f"; {sets}" if sets else "")


def markdown(rows: list[dict]) -> str:
    lines = ["| run | change | hardware | epochs (best) | val accuracy | test accuracy | PrivateTest | macro-F1 | "
             "TTA (ten views; its validation gain) | ECE raw -> scaled (T) | 16 / 24 / 32 px | other dataset's test: accuracy / macro-F1 "
             "(neutral called sad) | img/s | minutes |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s = r.get("scored")
        epochs = "(members')" if r.get("model") == "ensemble" else f"{r['epochs_run']} ({r['best_epoch']})"
        speed = "" if r.get("images_per_second") is None else f"{r['images_per_second']:.0f}"
        if not s:
            lines.append(f"| {r['name']} | {change(r)} | {r['hardware']} | {epochs} | "
                         f"{r['val_accuracy']:.4f} | not scored (weights not kept) | | | | | | | "
                         f"{speed} | {r['seconds'] / 60:.1f} |")
            continue
        cal = s["calibration"]
        sizes = " / ".join(f"{v:.3f}" for v in s["face_size"].values())
        c = s.get("cross")
        cross = "not scored" if not c else (
            f"{c['dataset']} ({c['classes']} classes, {c['n']}): {c['accuracy']:.4f} / {c['macro_f1']:.4f}"
            + (f" ({c['neutral_called_sad']:.2f} of {c['neutral_n']})" if "neutral_called_sad" in c else ""))
        lines.append(
            f"| {r['name']} | {change(r)} | {r['hardware']} | {epochs} | {r['val_accuracy']:.4f} | "
            f"{s['test']['accuracy']:.4f} | {s['subsets'].get('PrivateTest', {}).get('accuracy', float('nan')):.4f} | "
            f"{s['test']['macro_f1']:.4f} | {s['tta']['accuracy']:.4f} (PrivateTest "
            f"{s['tta']['subsets'].get('PrivateTest', {}).get('accuracy', float('nan')):.4f}"
            + (f"; validation {s['tta']['validation_gain']:+.4f}" if "validation_gain" in s["tta"] else "") + ") | "
            f"{cal['ece']['test_raw']:.3f} -> {cal['ece']['test_scaled']:.3f} ({cal['temperature']:.2f}) | {sizes} | "
            f"{cross} | {speed} | {r['seconds'] / 60:.1f} |")
    return "\n".join(lines)


def scoring_inputs(weights: Path, prepared: Path, params: dict, cross: Path | None) -> dict:
    """What a row's figures were computed from: any change in it means scoring again."""
    settings = params.get("evaluate") or {}
    return {"weights_sha256": files.sha256_file(weights),
            "test_sha256": files.sha256_file(prepared / "test.npz"),
            "val_sha256": files.sha256_file(prepared / "val.npz"),
            "cross_test_sha256": files.sha256_file(cross / "test.npz") if cross else None,
            "tta": settings.get("tta") or "ten", "face_sizes": list(settings.get("face_sizes") or [16, 24, 32])}


def earlier_scores(out: Path) -> dict:
    """name -> scored block of the rows an earlier run of this report wrote to OUT."""
    path = out / "runs.json"
    if not path.is_file():
        return {}
    return {r["name"]: r["scored"] for r in json.loads(path.read_text()) if r.get("scored")}


def main(argv: list[str] | None = None) -> int:
    from emorec.config import load_params

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results", type=Path, nargs="+", help="folders holding results.json and *.weights.h5")
    ap.add_argument("--prepared", type=Path, default=Path("data/prepared/fer2013"))
    ap.add_argument("--out", type=Path, default=Path("reports/recipe"))
    ap.add_argument("--cross", type=Path, default=None,
                    help="another dataset's prepared folder: its test split scored over the shared classes")
    ap.add_argument("--reuse", action="store_true",
                    help="keep earlier figures from OUT/runs.json whose weights, data and settings are unchanged")
    ap.add_argument("--keep-rows", action="store_true",
                    help="keep OUT/runs.json's rows of runs not in these folders as they are (their weights "
                         "stayed on the machine that trained them); a re-scored row keeps its place, new rows go after them")
    ap.add_argument("--ensemble", action="append", default=[], metavar="NAME=RUN,RUN[,...]",
                    help="also score the mean softmax of these runs (from the folders given) as one row")
    ap.add_argument("--export", type=Path, default=None, metavar="DIR",
                    help="also write each scored run as DIR/<run>/model.keras with preprocessing.json (its "
                         "input spec and fitted temperature): what `emorec infer --model` and "
                         "`python -m emorec.training.distill --member` load")
    args = ap.parse_args(argv)
    if args.export is not None and args.export.exists() and not args.export.is_dir():
        raise SystemExit(f"--export {args.export}: exists and is not a folder")
    ensembles = {}
    for spec in args.ensemble:
        name, _, members = spec.partition("=")
        if name:
            plain_name(name, f"--ensemble {spec!r}")
        if not name or len([m for m in members.split(",") if m]) < 2:
            raise SystemExit(f"--ensemble {spec!r}: expected NAME=RUN,RUN[,...] (two runs at least)")
        ensembles[name] = [m for m in members.split(",") if m]
    if args.cross is not None and not (args.cross / "test.npz").is_file():
        raise SystemExit(f"--cross {args.cross}: no test.npz there (run the prepare stage for that dataset)")
    params = load_params()
    earlier = earlier_scores(args.out) if args.reuse else {}
    rows, kept = [], {}
    for folder in args.results:
        for result in json.loads((folder / "results.json").read_text()):
            if "skipped" in result:
                continue
            weights = folder / f"{plain_name(result['name'], str(folder / 'results.json'))}.weights.h5"
            if weights.is_file():
                kept[result["name"]] = (result, weights)
                inputs = scoring_inputs(weights, args.prepared, params, args.cross)
                before = earlier.get(result["name"])
                figure = args.out / f"{result['name']}-reliability.png"
                if before and before.get("inputs") == inputs and figure.is_file():
                    result["scored"] = before
                    print(f"{result['name']}: figures kept (weights, data and settings unchanged)", flush=True)
                else:
                    result["scored"] = score_run(result, weights, args.prepared, params, figure, args.cross)
                    result["scored"]["inputs"] = inputs
                print(f"{result['name']}: test {result['scored']['test']['accuracy']:.4f}", flush=True)
            rows.append({k: v for k, v in result.items() if k != "val_accuracy_per_epoch"}
                        | {"val_accuracy_per_epoch": [round(a, 4) for a in result["val_accuracy_per_epoch"]]})
    for name, members in ensembles.items():
        missing = [m for m in members if m not in kept]
        if missing:
            raise SystemExit(f"--ensemble {name}: {missing} not among the runs with weights in {args.results}")
        inputs = {"members": [scoring_inputs(kept[m][1], args.prepared, params, args.cross) for m in members]}
        before, figure = earlier.get(name), args.out / f"{name}-reliability.png"
        if before and before.get("inputs") == inputs and figure.is_file():
            row = next(r for r in json.loads((args.out / "runs.json").read_text()) if r["name"] == name)
            print(f"{name}: figures kept (members' weights, data and settings unchanged)", flush=True)
        else:
            row = ensemble_row(name, [kept[m] for m in members], args.prepared, params, figure, args.cross)
            row["scored"]["inputs"] = inputs
        print(f"{name}: validation {row['val_accuracy']:.4f}, test {row['scored']['test']['accuracy']:.4f}", flush=True)
        rows.append(row)
    if args.keep_rows and (args.out / "runs.json").is_file():
        # a re-scored row keeps its place, so an ensemble stays after its members
        fresh = {r["name"]: r for r in rows}
        rows = [fresh.pop(r["name"], r) for r in json.loads((args.out / "runs.json").read_text())]
        rows += list(fresh.values())
    files.write_json(args.out / "runs.json", rows)
    files.write_text(args.out / "runs.md", markdown(rows) + "\n")
    print(markdown(rows))
    if args.export is not None:
        for name, (result, weights) in kept.items():
            print(f"{name}: {to_keras_file(result, weights, args.export / name)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
