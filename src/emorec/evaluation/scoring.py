"""What the evaluate stage measures beyond accuracy: the softmax temperature fitted on
validation with the ECE it gives on test, test-time augmentation, the official sub-splits
a paper-protocol test set is made of, and accuracy on faces shrunk as real time sees them.
The test split only ever reports: the temperature and every choice come from validation."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from emorec.evaluation import calibration
from emorec.evaluation.metrics import compute_metrics

_USAGE = re.compile(r"(PublicTest|PrivateTest)_")


def score(predict, x_val, y_val, x_test, y_test, test_probs, test_ids, classes, tta: str | None,
          face_sizes: list[int], figure: Path, title: str) -> dict:
    """`predict(uint8 faces) -> probabilities`; `test_probs`: the caller's single-view test
    predictions (not computed twice). Returns the extra evaluation.json sections."""
    val_probs = predict(x_val)
    temperature = calibration.fit_temperature(val_probs, y_val)
    test_scaled = calibration.scaled(test_probs, temperature)
    ece = {
        "test_raw": calibration.expected_calibration_error(test_probs, y_test),
        "test_scaled": calibration.expected_calibration_error(test_scaled, y_test),
        "validation_raw": calibration.expected_calibration_error(val_probs, y_val),
        "validation_scaled": calibration.expected_calibration_error(calibration.scaled(val_probs, temperature), y_val),
    }
    before, after = calibration.reliability(test_probs, y_test), calibration.reliability(test_scaled, y_test)
    calibration.plot_reliability(before, after, figure, title, ece["test_raw"], ece["test_scaled"], temperature)
    out = {
        "calibration": {"temperature": round(temperature, 4), "fitted_on": "validation", "bins": calibration.ECE_BINS,
                        "ece": {k: round(v, 4) for k, v in ece.items()},
                        "nll_test": {"raw": round(calibration.nll(test_probs, y_test), 4),
                                     "scaled": round(calibration.nll(test_scaled, y_test), 4)},
                        "reliability_test": {"raw": before, "scaled": after}},
        "subsets": subsets(test_probs, y_test, test_ids, classes),
        "face_size": {str(side): round(float((predict(calibration.shrunk(x_test, side)).argmax(1) == y_test).mean()), 4)
                      for side in face_sizes if side < x_test.shape[1]},
    }
    if tta:   # measured on validation too: that gain, not test's, says whether TTA is worth its cost
        views = calibration.views(x_test, tta)
        tta_probs = np.mean([predict(v) for v in views], axis=0)
        m = compute_metrics(y_test, tta_probs.argmax(1), classes)
        val_tta = np.mean([predict(v) for v in calibration.views(x_val, tta)], axis=0)
        val_single, val_views = (float((p.argmax(1) == y_val).mean()) for p in (val_probs, val_tta))
        out["tta"] = {"views": tta, "n_views": len(views), "accuracy": round(m["accuracy"], 4),
                      "macro_f1": round(m["macro_f1"], 4),
                      "subsets": subsets(tta_probs, y_test, test_ids, classes),
                      "validation_accuracy": round(val_views, 4),
                      "validation_gain": round(val_views - val_single, 4)}
    return out


def subsets(probs: np.ndarray, labels: np.ndarray, ids, classes) -> dict:
    """Accuracy per source dataset of a combined test set, and per official split inside
    it (FER2013: PublicTest, PrivateTest), read from each face's id; {} when they carry none."""
    if ids is None:
        return {}
    from emorec.data.combine import source_of

    groups = {}
    sources = source_of(ids)
    for name in sorted(set(sources) - {""}):
        groups[name] = sources == name
    usage = np.array([(m.group(1) if (m := _USAGE.search(str(i))) else "") for i in ids])
    for name in sorted(set(usage) - {""}):
        groups[name] = usage == name
    out = {}
    for name, keep in groups.items():
        m = compute_metrics(labels[keep], probs[keep].argmax(1), classes)
        out[name] = {"accuracy": round(m["accuracy"], 4), "macro_f1": round(m["macro_f1"], 4), "n": m["n"]}
    return out
