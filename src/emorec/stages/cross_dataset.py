"""DVC stage `cross_dataset`: grid models scored on another dataset's test split."""

from __future__ import annotations

import functools
from pathlib import Path

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.errors import EmorecError


def run(params: dict | None = None, root: Path | None = None) -> Path:
    """Each listed grid model scored on another dataset's test split, shared classes only."""
    from emorec.data.preprocess import InputSpec
    from emorec.evaluation import cross_dataset as transfer
    from emorec.models.loading import load_model

    params = params or load_params()
    paths = Paths(root or project_root())
    rows = []
    for pair in section(params, "cross_dataset"):
        dataset, model, balance = grid.Run.parse(pair["model"])
        test_ds = pair["test"]
        run_name = paths.run_name(dataset, model, balance)
        fractions = pair.get("framing") or [1.0]
        if not isinstance(fractions, list) or not all(
                isinstance(f, (int, float)) and not isinstance(f, bool) and 0 < f <= 1 for f in fractions):
            raise EmorecError(f"params.yaml: cross_dataset framing for {pair['model']} -> {test_ds} must be "
                              f"a list of centre-crop fractions in (0, 1] (1.0: as is), got {fractions!r}")
        class_mix = pair.get("class_mix")
        if class_mix is None:
            class_mix = False
        elif not isinstance(class_mix, bool):
            raise EmorecError(f"params.yaml: cross_dataset class_mix for {pair['model']} -> {test_ds} must be "
                              f"true or false, got {class_mix!r}")
        reason = (runs.not_trained(params, paths.root, grid.Run(dataset, model, balance))
                  or prepared.missing_reason(paths.prepared(test_ds)))
        if reason:
            rows.append({"model": run_name, "test": test_ds, "skipped": reason})
            continue
        keras_model, meta = load_model(paths.model_dir(dataset, model, balance))
        spec = InputSpec.from_dict(meta["input_spec"])
        parts = {part: prepared.load_part(paths.prepared(test_ds), part)      # each read once
                 for part in (("test", "val") if fractions != [1.0] or class_mix else ("test",))}
        score = functools.partial(_score, keras_model, spec, parts)
        own = files.read_json(paths.evaluation_dir(dataset, model, balance) / "evaluation.json")
        common = {"trained_on": dataset, "test": test_ds, "own_test_accuracy": own["test"]["accuracy"],
                  "own_test_macro_f1": own["test"]["macro_f1"], "weights": meta["weights"],
                  "seed": section(params, "seed")}
        m = score("test")
        rows.append(_row(run_name, m, common))
        print(f"{run_name} on {test_ds} ({len(m['classes'])} shared classes): accuracy {m['accuracy']:.4f}, "
              f"macro-F1 {m['macro_f1']:.4f} (own test {own['test']['accuracy']:.4f})")
        if fractions != [1.0]:
            best, on_val = transfer.choose_framing(lambda f, s=score: s("val", f)["macro_f1"], fractions)
            m = score("test", best)
            rows.append(_row(f"{run_name}, {test_ds} faces centre-cropped to {best:.2f} (chosen on its "
                             f"validation split)", m, {**common, "framing": best, "framing_validation_macro_f1":
                                                       {str(f): round(v, 4) for f, v in on_val.items()}}))
            print(f"  reframed (centre crop {best:.2f}, validation macro-F1 by crop {on_val}): "
                  f"accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")
        else:
            best = 1.0
        if class_mix:
            prior = _priors(paths, dataset, balance, list(spec.classes), parts["val"])
            m = score("test", best, prior)
            framed = f"centre-cropped to {best:.2f}, " if best != 1.0 else ""
            rows.append(_row(f"{run_name}, {test_ds} faces {framed}the class prior moved to its validation "
                             f"split's class mix", m, {**common, "framing": best, "class_mix": {
                                 "trained": _rounded(spec.classes, prior[0]), "target": _rounded(spec.classes, prior[1])}}))
            print(f"  with {test_ds}'s validation class mix: accuracy {m['accuracy']:.4f}, macro-F1 {m['macro_f1']:.4f}")
    from emorec.reporting import tables as report

    out = paths.root / "reports" / "cross_dataset.json"
    files.write_json(out, {"rows": rows})
    markdown = report.cross_dataset_markdown(rows)
    if any("class_mix" in r for r in rows):
        markdown += CLASS_MIX_NOTE
    files.write_text(out.with_suffix(".md"), markdown)
    return out


CLASS_MIX_NOTE = (
    "\nA *class prior moved* row multiplies the model's probabilities by the other dataset's "
    "validation class shares over those of the training split the model learned from (label shift, "
    "Saerens et al. 2002; `class_mix` in params.yaml): how much of the gap is the datasets' different "
    "class mixes rather than faces the model misreads. A *centre-cropped* row reframes the faces with "
    "the crop that scores best on that validation split. The test split sets neither.\n")


def _row(name: str, m: dict, common: dict) -> dict:
    return {"model": name, **common, "classes": m["classes"], "accuracy": m["accuracy"],
            "macro_f1": m["macro_f1"], "n": m["n"], "per_class_f1": {c: v["f1"] for c, v in m["per_class"].items()}}


def _priors(paths, dataset: str, balance: str, model_classes: list, val) -> tuple:
    """(the class mix of the training split the model learned from, the other dataset's
    validation class mix), both over the model's classes: the test split sets neither."""
    from emorec.evaluation import label_shift

    _, y_train, train_classes = prepared.load_part(paths.prepared(dataset), prepared.train_part(balance))
    return (label_shift.class_mix(y_train, list(train_classes), model_classes),
            label_shift.class_mix(val[1], list(val[2]), model_classes))


def _rounded(classes, prior) -> dict:
    return {c: round(float(v), 4) for c, v in zip(classes, prior)}


def _score(keras_model, spec, parts: dict, part: str, fraction: float = 1.0, prior: tuple | None = None) -> dict:
    """Metrics of `keras_model` on one split of another dataset, faces centre-cropped to `fraction`,
    its posteriors moved from one class prior to another when `prior` is (trained, target)."""
    from emorec.data.preprocess import to_model_input
    from emorec.evaluation import cross_dataset as transfer
    from emorec.evaluation import metrics as evaluation

    x, y, data_classes = parts[part]
    probs = keras_model.predict(to_model_input(transfer.centre_crop(x, fraction), spec), batch_size=256, verbose=0)
    if prior is not None:
        from emorec.evaluation import label_shift

        probs = label_shift.shift_prior(probs, *prior)
    y_true, y_pred, shared = transfer.restrict(probs, y, list(spec.classes), list(data_classes))
    return {**evaluation.compute_metrics(y_true, y_pred, shared), "classes": list(shared)}
