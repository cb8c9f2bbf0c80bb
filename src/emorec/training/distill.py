"""Knowledge distillation: a teacher ensemble's probabilities on the training faces, as soft
targets for a student of the same size (Hinton et al. 2015).

The teacher file is written once on the machine that has the trained members, and read by
the standalone runner (or any trainer) beside its data pack. It says nothing about itself
that is trusted: its probabilities are checked (shape, finite, rows summing to 1) and its
fingerprint of the training labels and images must match the data it is used with, so a
teacher file of another split or dataset is refused by name. Only training and validation
faces are ever read here: the temperature is fitted on validation.

    python -m emorec.training.distill data/prepared/fer2013 --member models/fer2013/cnn-plain/model.keras \\
        --member runs:/<seed 7 run id>/model --member runs:/<seed 1234 run id>/model --tta flip \\
        --out data/gpu/fer2013-teacher.npz      (the run ids: reports/seeds/seeds.json)
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

from emorec.errors import EmorecError

FORMAT = "emorec-teacher-1"


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the training labels and images, in order: ties a teacher file to its data."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(labels, np.int64).tobytes())
    digest.update(np.ascontiguousarray(images, np.uint8).tobytes())
    return digest.hexdigest()


def member_probs(model, images: np.ndarray, spec, tta: str | None) -> np.ndarray:
    """One member's softmax on uint8 faces, averaged over the test-time views `tta` names."""
    from emorec.data.preprocess import to_model_input
    from emorec.evaluation.calibration import views

    return np.mean([model.predict(to_model_input(v, spec), batch_size=512, verbose=0)
                    for v in views(images, tta)], axis=0)


def load_member(member: str):
    """A teacher member: a .keras file, or an MLflow model URI (runs:/<run id>/model, models:/<name>@<alias>)
    in this project's tracking store; loaded in safe mode either way."""
    if ":/" not in str(member):
        from emorec.models.loading import load_file

        return load_file(Path(member))
    import mlflow

    from emorec.config import project_root
    from emorec.experiments import tracking

    mlflow.set_tracking_uri(tracking.tracking_uri(project_root()))
    try:
        return tracking.load_logged_keras(str(member))
    except EmorecError:
        raise
    except Exception as exc:
        raise EmorecError(f"{member}: cannot load this teacher from {mlflow.get_tracking_uri()} "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None


def teacher_probs(members: list, train: tuple, val: tuple, classes, tta: str | None = "flip") -> dict:
    """The members' mean probabilities on the training faces, temperature-scaled by the
    temperature that fits the ensemble on validation (its calibration, not the student's)."""
    from emorec.data.preprocess import InputSpec
    from emorec.evaluation import calibration
    (x_tr, y_tr), (x_va, y_va) = train, val
    on_train, on_val, accs = [], [], []
    for path in members:
        model = load_member(path)
        size, channels = model.input_shape[1], model.input_shape[3]
        if model.output_shape[-1] != len(classes) or (size, channels) != (x_tr.shape[1], x_tr.shape[3]):
            raise EmorecError(f"{path}: the teacher takes {size}x{size}x{channels} faces and gives "
                              f"{model.output_shape[-1]} classes; the data has {x_tr.shape[1:]} and {len(classes)}")
        spec = InputSpec(size=size, channels=channels, classes=tuple(classes))
        on_train.append(member_probs(model, x_tr, spec, tta))
        on_val.append(member_probs(model, x_va, spec, tta))
        accs.append(float((on_val[-1].argmax(1) == y_va).mean()))
        print(f"teacher member {path}: validation accuracy {accs[-1]:.4f}", flush=True)
    val_probs, train_probs = np.mean(on_val, axis=0), np.mean(on_train, axis=0)
    temperature = calibration.fit_temperature(val_probs, y_va)
    return {"probs": calibration.scaled(train_probs, temperature).astype(np.float32),
            "temperature": float(temperature), "member_val_accuracy": accs,
            "val_accuracy": float((val_probs.argmax(1) == y_va).mean()),
            "train_agreement": float((train_probs.argmax(1) == y_tr).mean())}


def write_targets(path: Path, teacher: dict, images: np.ndarray, labels: np.ndarray, classes, members, tta) -> Path:
    """The teacher file (npz, written to a temp path then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, probs=teacher["probs"], format=FORMAT, classes=np.array(list(classes)),
                        fingerprint=fingerprint(images, labels), members=np.array([str(m) for m in members]),
                        tta=str(tta), temperature=teacher["temperature"],
                        val_accuracy=teacher["val_accuracy"])
    tmp.replace(path)
    return path


def read_targets(path: Path, images: np.ndarray, labels: np.ndarray, classes) -> np.ndarray:
    """The teacher's probabilities for exactly these training faces, or an EmorecError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise EmorecError(f"{path}: teacher file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            stored = {k: f[k] for k in ("probs", "format", "classes", "fingerprint")}
    except (OSError, ValueError, KeyError) as exc:
        raise EmorecError(f"{path}: not an emorec teacher file ({str(exc)[:200]})") from None
    probs = stored["probs"]
    if str(stored["format"]) != FORMAT:
        raise EmorecError(f"{path}: not an emorec teacher file (format {str(stored['format'])!r})")
    if tuple(str(c) for c in stored["classes"]) != tuple(classes):
        raise EmorecError(f"{path}: the teacher's classes {list(stored['classes'])} are not the data's {list(classes)}")
    if probs.ndim != 2 or probs.shape != (len(labels), len(classes)):
        raise EmorecError(f"{path}: teacher probabilities have shape {probs.shape}, "
                          f"the training split needs ({len(labels)}, {len(classes)})")
    if not np.isfinite(probs).all() or (probs < 0).any() or not np.allclose(probs.sum(1), 1.0, atol=1e-3):
        raise EmorecError(f"{path}: teacher probabilities are not distributions (negative, non-finite "
                          "or rows not summing to 1)")
    if str(stored["fingerprint"]) != fingerprint(images, labels):
        raise EmorecError(f"{path}: the teacher was computed on other training faces (fingerprint "
                          "mismatch); recompute it for this data")
    return probs.astype(np.float32)


def soft_targets(labels: np.ndarray, teacher: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x one-hot label + weight x teacher: what the student is trained towards."""
    if not 0.0 < weight <= 1.0:
        raise EmorecError(f"distillation weight must be in (0, 1], got {weight!r}")
    onehot = np.eye(teacher.shape[1], dtype=np.float32)[labels]
    return ((1.0 - weight) * onehot + weight * teacher).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    from emorec.data import prepared as prep

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prepared", type=Path, help="a prepared dataset folder (data/prepared/<ds>)")
    ap.add_argument("--member", action="append", required=True,
                    help="a teacher: a .keras file or an MLflow model URI such as runs:/<run id>/model (repeat)")
    ap.add_argument("--tta", choices=["none", "flip", "ten"], default="flip")
    ap.add_argument("--train-part", default="train", help="the training part the student fits (train | train_balanced)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    try:
        x_tr, y_tr, classes = prep.load_part(args.prepared, args.train_part)
        x_va, y_va, _ = prep.load_part(args.prepared, "val")
        tta = None if args.tta == "none" else args.tta
        teacher = teacher_probs(args.member, (x_tr, y_tr), (x_va, y_va), classes, tta)
        write_targets(args.out, teacher, x_tr, y_tr, classes, args.member, tta)
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {len(y_tr)} faces, ensemble validation accuracy {teacher['val_accuracy']:.4f} "
          f"(members {', '.join(f'{a:.4f}' for a in teacher['member_val_accuracy'])}), temperature "
          f"{teacher['temperature']:.2f}, agrees with the training labels on {teacher['train_agreement']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
