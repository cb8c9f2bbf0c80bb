"""Test-time augmentation in real time: what each kind buys in accuracy and costs in FPS.

Per kind (none, flip = 2 views, ten = 10 views; `infer.tta`, `emorec infer --tta`):
- accuracy on the FER2013 validation split (the split that decides whether TTA is worth
  it), the paper-protocol test split and its PrivateTest part, through the real-time
  classifier itself (`Classifier.predict_faces`: views in one batch, the model's
  temperature applied), not through a separate scoring path;
- end-to-end FPS on the webcam video through the infer stage's loop (realtime_fps.py's
  row, each in a fresh process), the median of `--repeats` rounds over all kinds.

    python benchmarks/tta_realtime.py --model path/to/model.keras
    python benchmarks/tta_realtime.py --recipe-run runs/recipe/cpu-less-dropout

Writes reports/benchmarks/tta_realtime.json and prints a markdown table (section 8 of
reports/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import real_faces  # noqa: E402
from _common import ROOT, save  # noqa: E402

KINDS = (None, "flip", "ten")
VIDEO = ROOT.parent / "shared" / "media" / "videos" / "webcam_640x480_one_face.mp4"
PREPARED = ROOT / "data" / "prepared" / "fer2013"


def accuracies(model: str, tta: str | None, prepared: Path, chunk: int = 512) -> dict:
    """Validation, test and test sub-split accuracy of the real-time classifier with `tta`."""
    import numpy as np

    from emorec.data import prepared as prep
    from emorec.evaluation import scoring
    from emorec.evaluation.metrics import compute_metrics
    from emorec.inference.classifier import Classifier

    classifier = Classifier(model, ROOT, tta=tta)

    def probs(x):
        return np.concatenate([classifier.predict_faces(list(x[i:i + chunk])) for i in range(0, len(x), chunk)])

    x_val, y_val, classes = prep.load_part(prepared, "val")
    x_test, y_test, _ = prep.load_part(prepared, "test")
    if list(classes) != list(classifier.classes):
        raise SystemExit(f"{model}: classes {list(classifier.classes)} differ from {prepared}'s {list(classes)}")
    test_probs = probs(x_test)
    out = {"validation": round(compute_metrics(y_val, probs(x_val).argmax(1), classes)["accuracy"], 4),
           "test": round(compute_metrics(y_test, test_probs.argmax(1), classes)["accuracy"], 4),
           "n_validation": len(y_val), "n_test": len(y_test)}
    subsets = scoring.subsets(test_probs, y_test, prep.load_ids(prepared, "test"), classes)
    out.update({f"test_{name}": s["accuracy"] for name, s in subsets.items()})
    return out


def fps_row(model: str, detector: str, tta: str | None) -> dict:
    """One run of the infer stage's loop on the video with `infer.tta` set, in a fresh process."""
    import realtime_fps  # here: importing it sets TF_USE_LEGACY_KERAS for its rows' processes

    row = realtime_fps.row_in_fresh_process(str(VIDEO), model, detector, "-" if tta is None else f"tta={tta}")
    if "error" in row:
        raise SystemExit(f"FPS run with tta={tta} failed: {row['error']}")
    return row


def measure(name: str, model: str, detector: str, repeats: int, prepared: Path) -> dict:
    runs: dict = {kind: [] for kind in KINDS}
    for _ in range(repeats):     # rounds, so a slow spell of the machine spreads over every kind
        for kind in KINDS:
            runs[kind].append(fps_row(model, detector, kind))
    rows = []
    for kind in KINDS:
        ok = sorted(runs[kind], key=lambda r: r["fps"])
        mid = ok[len(ok) // 2]
        row = {"tta": kind, "views": {None: 1, "flip": 2, "ten": 10}[kind], **accuracies(model, kind, prepared),
               "fps": mid["fps"], "fps_runs": [r["fps"] for r in ok],
               "classify_ms_per_frame": mid["ms_per_frame"].get("classify"),
               "detect_ms_per_frame": mid["ms_per_frame"].get("detect"), "faces": mid["faces"]}
        print(f"{name} tta={kind}: validation {row['validation']}, test {row['test']}, FPS {row['fps']}", flush=True)
        rows.append(row)
    return {"model": name, "detector": detector, "video": VIDEO.name, "repeats": repeats, "rows": rows}


def markdown(results: list[dict]) -> str:
    lines = ["| model | TTA (views) | validation | test | PrivateTest | end-to-end FPS | classify ms / frame | "
             "detect ms / frame |", "|---|---|---|---|---|---|---|---|"]
    for r in results:
        base = r["rows"][0]
        for row in r["rows"]:
            gain = "" if row is base else f" ({row['validation'] - base['validation']:+.4f})"
            lines.append(f"| {r['model']} | {row['tta'] or 'none'} ({row['views']}) | {row['validation']:.4f}{gain} | "
                         f"{row['test']:.4f} | {row.get('test_PrivateTest', float('nan')):.4f} | {row['fps']:.1f} | "
                         f"{row['classify_ms_per_frame']:.2f} | {row['detect_ms_per_frame']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from emorec.config import load_params

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    real_faces.add_model_args(ap)
    ap.add_argument("--prepared", type=Path, default=PREPARED, help="the prepared FER2013 folder")
    ap.add_argument("--detector", default=None, help="default: infer.detector")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=None, help="default: reports/benchmarks/tta_realtime.json")
    args = ap.parse_args(argv)
    if not VIDEO.is_file():
        raise SystemExit(f"{VIDEO} is needed (../shared)")
    if not (args.prepared / "test.npz").is_file() or not (args.prepared / "val.npz").is_file():
        raise SystemExit(f"--prepared {args.prepared}: no prepared test split there (dvc repro -s prepare@fer2013)")
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
    detector = args.detector or load_params(ROOT / "params.yaml")["infer"]["detector"]
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name, model in real_faces.model_targets(args, Path(work)):
            results.append(measure(name, model, detector, args.repeats, args.prepared))
    save("tta_realtime", {"prepared": str(args.prepared.relative_to(ROOT) if args.prepared.is_relative_to(ROOT)
                                          else args.prepared), "results": results}, args.out)
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
