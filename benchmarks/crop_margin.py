"""Which crop margin around the detector's boxes gives a classifier the faces it was trained on?

Real time crops each detected face with `infer.margin` around the detector's box. Training
faces were framed by each dataset's own cropping (FER2013 tight, AffectNet looser), so the
margin that matches them is a measurable choice, not a guess. Labelled validation faces of
FER2013 and AffectNet go through the real-time path: each face image is enlarged to
`--face-px` and set on a black canvas, the detector finds the face, the face is cropped with
every candidate margin, and the classifier scores each. The margin (>= 0, infer.margin's
range) with the best macro-F1 on the pooled validation faces is the choice; the test split
is scored only at the chosen margin and at the one compared with (`--compare`, default
infer.margin), to report, never to choose.
The canvas is black: a margin reaching past a stored face meets black, not the real
surroundings a camera frame has, so wide margins are judged a little harshly here.

    python benchmarks/crop_margin.py                       # the champions of the registry
    python benchmarks/crop_margin.py --models models:/emorec-combined@champion --limit 500
    python benchmarks/crop_margin.py --compare 0.15       # test also scored at 0.15 (the old default)

Writes reports/benchmarks/crop_margin.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _common import ROOT, save  # noqa: E402

CHAMPIONS = "models:/emorec-combined@champion,models:/emorec-fer2013@champion"
MARGINS = "-0.1,-0.05,0,0.05,0.1,0.15,0.2,0.3"


def on_canvas(image: np.ndarray, face_px: int) -> np.ndarray:
    """A stored face (H, W[, C], RGB or grey) enlarged to face_px and centred on a black
    canvas twice its size, as BGR: room for the detector and for wide margins."""
    rgb = image if image.ndim == 3 and image.shape[2] == 3 else np.repeat(image.reshape(*image.shape[:2], 1), 3, 2)
    face = cv2.resize(cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), (face_px, face_px),
                      interpolation=cv2.INTER_CUBIC)
    pad = face_px // 2
    return cv2.copyMakeBorder(face, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def detected_crops(recognizer, images: np.ndarray, margins: list[float], face_px: int):
    """{margin: RGB crops} of every face the detector finds (the most confident box per
    image), and the indices of those images."""
    crops: dict[float, list] = {m: [] for m in margins}
    kept = []
    for i, image in enumerate(images):
        canvas = on_canvas(image, face_px)
        faces = recognizer.detect(canvas)
        if not faces:
            continue
        face = max(faces, key=lambda f: f.score)
        per_margin = {}
        for m in margins:
            recognizer.margin = m
            cut, _ = recognizer.crops(canvas, [face])
            if not cut:
                break
            per_margin[m] = cut[0]
        if len(per_margin) == len(margins):
            kept.append(i)
            for m in margins:
                crops[m].append(per_margin[m])
    return crops, np.array(kept, dtype=int)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=CHAMPIONS, help="comma-separated model URIs or paths")
    ap.add_argument("--datasets", default="fer2013,affectnet", help="prepared datasets with val and test splits")
    ap.add_argument("--margins", default=MARGINS, help="candidate margins (fractions of the box size)")
    ap.add_argument("--face-px", type=int, default=160, help="each stored face is enlarged to this size")
    ap.add_argument("--limit", type=int, default=0, help="a seeded sample of N faces per dataset and split (0: all)")
    ap.add_argument("--compare", type=float, default=None,
                    help="the margin to compare with (default: params.yaml's infer.margin)")
    ap.add_argument("--out", default=None, help="JSON path (default reports/benchmarks/crop_margin.json)")
    args = ap.parse_args()

    from pathlib import Path

    from emorec.config import load_params
    from emorec.data import prepared
    from emorec.errors import EmorecError
    from emorec.evaluation import cross_dataset as transfer
    from emorec.evaluation import metrics as evaluation
    from emorec.recognizer import EmotionRecognizer

    try:
        margins = sorted({float(m) for m in args.margins.split(",") if m.strip()})
    except ValueError:
        print(f"error: --margins must be comma-separated numbers, got {args.margins!r}", file=sys.stderr)
        return 2
    if not margins or min(margins) <= -0.5 or args.face_px < 32:
        print("error: --margins must be > -0.5 each and --face-px at least 32", file=sys.stderr)
        return 2
    params = load_params(ROOT / "params.yaml")
    configured = float(params["infer"]["margin"] if args.compare is None else args.compare)
    margins = sorted(set(margins) | {configured})
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    recognizers = {}
    try:
        for model in models:
            recognizers[model] = EmotionRecognizer.from_params(params, ROOT, model=model)
        data = {}
        for ds in datasets:
            for split in ("val", "test"):
                x, y, classes = prepared.load_part(ROOT / "data" / "prepared" / ds, split)
                if args.limit:      # a seeded sample: the splits are stored class by class
                    pick = np.sort(np.random.default_rng(0).permutation(len(x))[:args.limit])
                    x, y = x[pick], y[pick]
                data[ds, split] = (x, y, list(classes))
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    detector = next(iter(recognizers.values()))
    crops, detected = {}, {}
    for (ds, split), (x, _, _) in data.items():
        crops[ds, split], kept = detected_crops(detector, x, margins, args.face_px)
        detected[ds, split] = kept
        print(f"{ds} {split}: the detector found {len(kept)} of {len(x)} faces", flush=True)

    def score(rec, split: str, margin: float, only: list[str] | None = None) -> dict:
        """Pooled over the datasets: accuracy and macro-F1 over the classes each shares with the model."""
        y_true, y_pred, names = [], [], None
        for ds in only or datasets:
            _, y, classes = data[ds, split]
            kept = detected[ds, split]
            if not len(kept):
                continue
            probs = rec.classify(crops[ds, split][margin])
            t, p, shared = transfer.restrict(probs, y[kept], list(rec.classes), classes)
            names = names or list(shared)
            lookup = [names.index(c) if c in names else -1 for c in shared]
            y_true += [lookup[v] for v in t]
            y_pred += [lookup[v] for v in p]
        m = evaluation.compute_metrics(np.array(y_true), np.array(y_pred), names)
        return {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4), "n": m["n"]}

    rows = []
    for model, rec in recognizers.items():
        on_val = {m: score(rec, "val", m) for m in margins}
        # chosen among margins >= 0 (infer.margin's range: a crop never cuts into the detector's box);
        # the negative ones are measured to show which way the curve goes
        best = max((m for m in margins if m >= 0), key=lambda m: (on_val[m]["macro_f1"], -abs(m - configured)))
        row = {"model": model, "validation": {str(m): v for m, v in on_val.items()}, "chosen_margin": best,
               "validation_by_dataset": {ds: {str(m): score(rec, "val", m, [ds])["macro_f1"] for m in margins}
                                         for ds in datasets},
               "test_at_chosen": score(rec, "test", best), "test_at_configured": score(rec, "test", configured)}
        rows.append(row)
        print(f"{model}: validation macro-F1 by margin " + ", ".join(
            f"{m:g}: {v['macro_f1']:.4f}" for m, v in on_val.items()) + f" -> margin {best:g}", flush=True)
        for ds, by_margin in row["validation_by_dataset"].items():
            print(f"  {ds} alone: " + ", ".join(f"{m}: {v:.4f}" for m, v in by_margin.items()), flush=True)
    lines = [f"| model | validation macro-F1 at {configured:g} (compared) | chosen margin | validation "
             f"macro-F1 there | test accuracy / macro-F1 at {configured:g} | at the chosen margin |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        c, b = r["validation"][str(configured)], r["validation"][str(r["chosen_margin"])]
        lines.append(f"| {r['model']} | {c['macro_f1']:.4f} | {r['chosen_margin']:g} | {b['macro_f1']:.4f} | "
                     f"{r['test_at_configured']['accuracy']:.4f} / {r['test_at_configured']['macro_f1']:.4f} | "
                     f"{r['test_at_chosen']['accuracy']:.4f} / {r['test_at_chosen']['macro_f1']:.4f} |")
    print("\n".join(lines))
    out = save("crop_margin", {
        "what": "the crop margin around yunet boxes, chosen on pooled FER2013 + AffectNet validation faces "
                "through the real-time path; test scored at the chosen and the compared margin only",
        "datasets": datasets, "face_px": args.face_px, "limit": args.limit or None, "margins": margins,
        "compared_margin": configured, "infer_margin": params["infer"]["margin"], "detector": params["infer"]["detector"],
        "detected": {f"{ds}/{split}": [int(len(k)), int(len(data[ds, split][0]))] for (ds, split), k in detected.items()},
        "rows": rows, "table": lines}, Path(args.out) if args.out else None)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
