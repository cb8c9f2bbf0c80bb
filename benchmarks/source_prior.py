"""Does a combined model read a class prior off each face's source?

The combined dataset joins sources with different class mixes: the shared AffectNet subset
holds 3 % happy and 7 % neutral faces, FER2013 26 % and 18 %. A model that can tell the
sources apart by their look (colour converted to grey, in-the-wild poses, looser crops) can
learn each mix as a prior, and then rarely calls an AffectNet-looking face happy or neutral.
This benchmark puts the figures side by side on each source's validation faces, per class:
the share of faces with that label, the model's mean probability for it, and its recall.
A model that copies each source's mix shows mean probabilities that follow the label
shares, and a lower recall of the rare classes on the source where they are rare. Only
validation faces are read.

    python benchmarks/source_prior.py --model models/combined/cnn-plain/model.keras [--model ...]

Writes reports/benchmarks/source_prior.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import ROOT, save  # noqa: E402


def per_source(probs: np.ndarray, labels: np.ndarray, sources: np.ndarray, classes) -> dict:
    """{source: {class: label share, mean probability, recall}} over each source's faces."""
    out = {}
    predicted = probs.argmax(1)
    for source in sorted(set(sources.tolist())):
        keep = sources == source
        rows = {}
        for k, name in enumerate(classes):
            mine = keep & (labels == k)
            rows[name] = {"label_share": round(float(mine.sum() / keep.sum()), 4),
                          "mean_probability": round(float(probs[keep, k].mean()), 4),
                          "recall": round(float((predicted[mine] == k).mean()), 4) if mine.any() else None}
        out[source] = {"n": int(keep.sum()), "classes": rows}
    return out


def markdown(rows: list[dict], watch=("happy", "neutral")) -> str:
    sources = sorted({s for r in rows for s in r["sources"]})
    head = " | ".join(f"{c} on {s}: label share / mean p / recall" for c in watch for s in sources)
    lines = [f"| model | {head} |", "|---|" + "---|" * (len(watch) * len(sources))]
    for r in rows:
        cells = []
        for c in watch:
            for s in sources:
                v = r["sources"][s]["classes"][c]
                cells.append(f"{v['label_share']:.3f} / {v['mean_probability']:.3f} / {v['recall']}")
        lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from emorec.data import prepared
    from emorec.data.combine import source_of
    from emorec.training import studies

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, type=Path,
                    help="a trained run's folder or its model.keras (run.json beside it)")
    ap.add_argument("--dataset", default="combined", help="the prepared dataset of several sources")
    ap.add_argument("--out", type=Path, default=None, help="default: reports/benchmarks/source_prior.json")
    args = ap.parse_args(argv)
    folder = ROOT / "data" / "prepared" / args.dataset
    if reason := prepared.missing_reason(folder):
        raise SystemExit(f"{folder}: {reason}")
    images, labels, classes = prepared.load_part(folder, "val")
    sources = source_of(prepared.load_ids(folder, "val"))
    if len(set(sources.tolist())) < 2:
        raise SystemExit(f"{folder}: its validation faces come from one source; nothing to compare")
    rows = []
    for model in args.model:
        model_dir = model.parent if model.suffix == ".keras" else model
        if not (model_dir / "run.json").is_file():
            raise SystemExit(f"--model {model}: no run.json in {model_dir}")
        probs = studies.model_probs(model_dir, {"val": images})["val"]
        rows.append({"model": str(model), "sources": per_source(probs, labels, sources, classes)})
    save("source_prior", {"dataset": args.dataset, "split": "val", "rows": rows}, args.out)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
