"""Is the plain webcam face called angry / fear / sad because of the class prior a model
learned from its training set? Logit adjustment (Menon et al. 2021, "Long-tail learning
via logit adjustment") removes a learned prior after training: the model's calibrated
log-probabilities minus tau x log(training prior of each class), tau = 0 leaving the model
as it is, tau = 1 aiming at a uniform prior.

The combined dataset is where this matters: AffectNet's shared subset has few happy (3 %)
and neutral (7 %) faces against many angry, disgusted, fearful and surprised ones, the
opposite of faces in the wild. Validation chooses tau (the union of the validation
splits, the `choose` stage's measure, and each source's own); the test split is never
read. The unlabelled real faces (WIDER FACE photos, the webcam video, through the
real-time path) show what each tau does to the complaint, as shares per class.

    python benchmarks/prior_shift.py --model models/combined/cnn-plain/model.keras \
        --dataset combined [--taus 0 0.25 0.5 0.75 1]

Writes reports/benchmarks/prior_shift.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from _common import ROOT, save  # noqa: E402
from real_faces import LARGE, PHOTOS, VIDEO, detected, video_frames  # noqa: E402


def adjusted(probs: np.ndarray, log_prior: np.ndarray, tau: float) -> np.ndarray:
    """softmax(log p - tau x log prior): the prior learned from training, removed by tau."""
    logits = np.log(np.clip(probs, 1e-12, 1.0)) - tau * log_prior
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def training_prior(labels: np.ndarray, n_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    if (counts == 0).any():
        raise SystemExit("a class has no training face: its prior is undefined")
    return counts / counts.sum()


def validation_rows(probs, labels, sources, log_prior, taus, classes) -> list[dict]:
    from emorec.evaluation.metrics import compute_metrics

    rows = []
    for tau in taus:
        pred = adjusted(probs, log_prior, tau).argmax(axis=1)
        union = compute_metrics(labels, pred, tuple(classes))
        row = {"tau": tau, "union": {"accuracy": round(union["accuracy"], 4), "macro_f1": round(union["macro_f1"], 4),
                                     "n": int(len(labels))},
               "predicted_share": {c: round(float((pred == k).mean()), 4) for k, c in enumerate(classes)}}
        for source in sorted(set(sources)):
            keep = sources == source
            m = compute_metrics(labels[keep], pred[keep], tuple(classes))
            row[source] = {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4),
                           "n": int(keep.sum())}
        rows.append(row)
    return rows


def real_face_probs(recognizer) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(calibrated probabilities, short side) of every face found in the photos and the video."""
    out = {}
    for name, images in (("photos", (cv2.imread(str(p)) for p in sorted(PHOTOS.rglob("*.jpg")))),
                         ("webcam_video", video_frames(VIDEO))):
        probs, sides = [], []
        for face, side in detected(recognizer, images):
            probs.append([face.probabilities[c] for c in recognizer.classes])
            sides.append(side)
        out[name] = (np.asarray(probs, np.float64).reshape(-1, len(recognizer.classes)), np.asarray(sides))
    return out


def share_rows(faces, log_prior, taus, classes) -> list[dict]:
    rows = []
    for tau in taus:
        row = {"tau": tau}
        for name, (probs, sides) in faces.items():
            groups = {"all": np.ones(len(sides), bool)}
            if name == "photos":
                groups["large"] = sides >= LARGE
            for group, keep in groups.items():
                pred = adjusted(probs[keep], log_prior, tau).argmax(axis=1) if keep.any() else np.zeros(0, int)
                row[f"{name}_{group}"] = {"n": int(keep.sum()),
                                          "share": {c: round(float((pred == k).mean()), 4) if len(pred) else None
                                                    for k, c in enumerate(classes)}}
        rows.append(row)
    return rows


def markdown(validation: list[dict], shares: list[dict], sources: list[str]) -> str:
    head = ["| tau | union of validation: macro-F1 / accuracy |"] + [f" {s}: macro-F1 / accuracy |" for s in sources]
    lines = ["".join(head), "|---|---|" + "---|" * len(sources)]
    for r in validation:
        cells = [f"| {r['tau']} | {r['union']['macro_f1']:.4f} / {r['union']['accuracy']:.4f} |"]
        cells += [f" {r[s]['macro_f1']:.4f} / {r[s]['accuracy']:.4f} |" for s in sources]
        lines.append("".join(cells))
    lines += ["", "| tau | webcam video: neutral / sad / angry / fear | photos, all faces: neutral / sad / happy |",
              "|---|---|---|"]
    for r in shares:
        v, p = r["webcam_video_all"]["share"], r["photos_all"]["share"]
        lines.append(f"| {r['tau']} | {v['neutral']} / {v['sad']} / {v['angry']} / {v['fear']} | "
                     f"{p['neutral']} / {p['sad']} / {p['happy']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from emorec.config import Paths, load_params
    from emorec.data import prepared
    from emorec.data.combine import source_of
    from emorec.inference.classifier import Classifier
    from emorec.recognizer import EmotionRecognizer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a registry URI or a .keras file with run.json beside it")
    ap.add_argument("--dataset", default="combined", help="the prepared dataset the model was trained on")
    ap.add_argument("--train-part", default="train", help="train (plain) or train_balanced")
    ap.add_argument("--taus", type=float, nargs="+", default=[0.0, 0.25, 0.5, 0.75, 1.0])
    ap.add_argument("--out", type=Path, default=None, help="default: reports/benchmarks/prior_shift.json")
    args = ap.parse_args(argv)
    if any(not 0 <= t <= 2 for t in args.taus):
        raise SystemExit("--taus: each from 0 to 2")
    folder = Paths(ROOT).prepared(args.dataset)
    if not (folder / "val.npz").is_file() or not (folder / f"{args.train_part}.npz").is_file():
        raise SystemExit(f"{folder}: needs {args.train_part}.npz and val.npz (run `dvc repro prepare` / `combine`)")
    if not any(PHOTOS.rglob("*.jpg")) or not VIDEO.is_file():
        raise SystemExit(f"{PHOTOS} and {VIDEO}: the WIDER FACE photos and the webcam video are needed (../shared)")

    _, y_train, classes = prepared.load_part(folder, args.train_part)
    prior = training_prior(y_train, len(classes))
    x_val, y_val, _ = prepared.load_part(folder, "val")
    ids = prepared.load_ids(folder, "val")
    sources = source_of(ids) if ids is not None else np.array([""] * len(y_val))
    sources = np.where(sources == "", args.dataset, sources)
    classifier = Classifier(args.model, ROOT)
    if tuple(classifier.classes) != tuple(classes):
        raise SystemExit(f"{args.model}: classes {classifier.classes} differ from {folder}'s {classes}")
    # the faces as the `choose` stage feeds them (its union-of-validation measure)
    probs = np.concatenate([classifier.predict_faces(list(x_val[i:i + 512])) for i in range(0, len(x_val), 512)])
    temperature = classifier.temperature
    if temperature == 1.0:     # a model straight from `train` carries none yet: fit it as evaluate does
        from emorec.evaluation.calibration import fit_temperature, scaled

        temperature = fit_temperature(probs, y_val)
        probs = scaled(probs, temperature)
    log_prior = np.log(prior)
    validation = validation_rows(probs, y_val, sources, log_prior, args.taus, classes)

    recognizer = EmotionRecognizer.from_params(load_params(ROOT / "params.yaml"), ROOT, model=args.model)
    faces = real_face_probs(recognizer)
    if temperature != classifier.temperature:
        from emorec.evaluation.calibration import scaled

        faces = {k: (scaled(p.astype(np.float32), temperature), s) for k, (p, s) in faces.items()}
    shares = share_rows(faces, log_prior, args.taus, classes)
    best = max(validation, key=lambda r: (r["union"]["macro_f1"], -r["tau"]))
    result = {"model": args.model, "dataset": args.dataset, "train_part": args.train_part,
              "temperature": round(temperature, 4),
              "temperature_from": "the model" if temperature == classifier.temperature else "fitted on validation",
              "training_prior": {c: round(float(p), 4) for c, p in zip(classes, prior)},
              "chosen_by": "macro-F1 on the union of the validation splits", "chosen_tau": best["tau"],
              "validation": validation, "real_faces": shares}
    path = save("prior_shift", result, args.out)
    print(markdown(validation, shares, sorted(set(sources))))
    print(f"validation chooses tau = {best['tau']}; written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
