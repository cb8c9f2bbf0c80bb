"""Two classifiers on the same test faces, face by face: is a difference a gain or noise?

Two models' accuracies on one split differ by chance as well as by skill. Paired on the
same faces, only the faces exactly one of them gets right carry the difference; the exact
McNemar test (two-sided binomial test of those two counts at 1/2) says how often chance
alone would split them that unevenly. Reported for the whole test split and, for FER2013,
each official half (PublicTest, PrivateTest): one view, top-1, the faces exactly as the
prepared dataset stores them (what recipe_report and the evaluate stage score).

    python benchmarks/paired_runs.py --recipe-run runs/recipe/vggdist60 --recipe-run runs/recipe/gen2
    python benchmarks/paired_runs.py --model a/model.keras --model b/model.keras

The test split chooses nothing here: it compares models already chosen on validation.
Writes reports/benchmarks/paired_runs.json (or --out) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import ROOT, save  # noqa: E402


def paired(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """Counts and exact McNemar p for two boolean 'was this face right' vectors over the same faces."""
    from scipy.stats import binomtest

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"the two models were scored on different faces ({a.shape} against {b.shape})")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return {"n": int(a.size), "accuracy_a": round(float(a.mean()), 4), "accuracy_b": round(float(b.mean()), 4),
            "only_a_right": only_a, "only_b_right": only_b, "mcnemar_exact_p": round(float(p), 4)}


def splits(ids: np.ndarray | None, n: int) -> dict[str, np.ndarray]:
    """{"test": all faces, and "PublicTest" / "PrivateTest" when the face ids name them}."""
    from emorec.evaluation.scoring import _USAGE  # the pattern evaluate and recipe_report split by

    out = {"test": np.ones(n, bool)}
    if ids is not None:
        usage = np.array([(m.group(1) if (m := _USAGE.search(str(i))) else "") for i in ids])
        out.update({name: usage == name for name in sorted(set(usage) - {""})})
    return out


def compare(pred_a: np.ndarray, pred_b: np.ndarray, labels: np.ndarray, ids: np.ndarray | None) -> dict:
    """`paired` on every split of `splits`, plus how often the two models give the same top-1."""
    out = {}
    for name, keep in splits(ids, len(labels)).items():
        out[name] = {**paired(pred_a[keep] == labels[keep], pred_b[keep] == labels[keep]),
                     "same_top1": round(float((pred_a[keep] == pred_b[keep]).mean()), 4)}
    return out


def top1(model_file: Path, images: np.ndarray, data_classes) -> np.ndarray:
    """A .keras file's top-1 class index (in the data's class order) for stored faces."""
    from emorec import files
    from emorec.data.preprocess import to_model_input
    from emorec.inference.classifier import read_spec
    from emorec.models import loading

    spec_file = model_file.parent / "preprocessing.json"
    if model_file.suffix.lower() != ".keras" or not spec_file.is_file():
        raise SystemExit(f"--model {model_file}: give a .keras file with preprocessing.json beside it")
    spec, _ = read_spec(files.read_json(spec_file), str(spec_file))
    if list(spec.classes) != list(data_classes):
        raise SystemExit(f"--model {model_file}: its classes {list(spec.classes)} are not the data's {list(data_classes)}")
    model = loading.load_file(model_file)
    return np.asarray(model.predict(to_model_input(images, spec), batch_size=512, verbose=0)).argmax(1)


def markdown(names: tuple[str, str], result: dict) -> str:
    a, b = names
    lines = [f"| split | faces | {a} | {b} | only {a} right | only {b} right | exact McNemar p | same top-1 |",
             "|---|---|---|---|---|---|---|---|"]
    for split, r in result.items():
        lines.append(f"| {split} | {r['n']} | {r['accuracy_a']:.4f} | {r['accuracy_b']:.4f} | {r['only_a_right']} | "
                     f"{r['only_b_right']} | {r['mcnemar_exact_p']:.3f} | {r['same_top1']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from real_faces import add_model_args, model_targets

    from emorec.data import prepared

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_args(ap)
    ap.add_argument("--prepared", type=Path, default=ROOT / "data" / "prepared" / "fer2013",
                    help="the prepared dataset whose test split both models are scored on")
    ap.add_argument("--out", type=Path, default=None, help="default: reports/benchmarks/paired_runs.json")
    args = ap.parse_args(argv)
    if not (args.prepared / "test.npz").is_file():
        raise SystemExit(f"--prepared {args.prepared}: no test.npz there")
    images, labels, classes = prepared.load_part(args.prepared, "test")
    ids = prepared.load_ids(args.prepared, "test")
    with tempfile.TemporaryDirectory() as work:
        targets = model_targets(args, Path(work))
        if len(targets) != 2:
            raise SystemExit(f"give exactly two models (--model / --recipe-run); got {len(targets)}: "
                             f"{', '.join(name for name, _ in targets)}")
        preds = [top1(Path(model), images, classes) for _, model in targets]
    names = (targets[0][0], targets[1][0])
    result = compare(preds[0], preds[1], labels, ids)
    print(markdown(names, result))
    print(save("paired_runs", {"models": list(names), "data": f"{args.prepared.name} test split, one view, top-1",
                               "splits": result}, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
