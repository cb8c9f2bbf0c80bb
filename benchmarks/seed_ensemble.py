"""The seeds study's models as one ensemble, with and without the mirror view: does
test-time augmentation add to what averaging the seeds buys?

Every run of `reports/seeds/seeds.json` (the grid run and the seeds stage's runs, loaded
from MLflow as `runs:/<id>/model`) classifies the FER2013 validation and test splits
through the real-time classifier (`Classifier.predict_faces`, views in one batch). The
temperature is set to 1 for every member (raw softmax, as the seeds stage's own
ensemble), since only the grid run was calibrated. Validation says what pays; test only
reports.

    python benchmarks/seed_ensemble.py [--seeds reports/seeds/seeds.json]

Writes reports/benchmarks/seed_ensemble.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from _common import ROOT, save  # noqa: E402

KINDS = (None, "flip")
PREPARED = ROOT / "data" / "prepared" / "fer2013"


def member_probs(run_id: str, tta: str | None, image_sets, chunk: int = 512) -> list:
    """One member's raw softmax on each of `image_sets` with `tta` views averaged (loaded once)."""
    import numpy as np

    from emorec.inference.classifier import Classifier

    classifier = Classifier(f"runs:/{run_id}/model", ROOT, tta=tta)
    classifier.temperature = 1.0     # raw, like the seeds stage's ensemble: only one member is calibrated
    return [np.concatenate([classifier.predict_faces(list(x[i:i + chunk])) for i in range(0, len(x), chunk)])
            for x in image_sets]


def measure(run_ids: list[str], prepared: Path) -> list[dict]:
    import numpy as np

    from emorec.data import prepared as prep
    from emorec.evaluation import scoring

    x_val, y_val, classes = prep.load_part(prepared, "val")
    x_test, y_test, _ = prep.load_part(prepared, "test")
    ids = prep.load_ids(prepared, "test")
    rows = []
    for kind in KINDS:
        val, test = zip(*(member_probs(r, kind, (x_val, x_test)) for r in run_ids))
        members_val = [float((p.argmax(1) == y_val).mean()) for p in val]
        members_test = [float((p.argmax(1) == y_test).mean()) for p in test]
        ens_val, ens_test = np.mean(val, axis=0), np.mean(test, axis=0)
        row = {"tta": kind or "none", "members": len(run_ids),
               "member_validation": [round(v, 4) for v in members_val],
               "member_test": [round(v, 4) for v in members_test],
               "ensemble_validation": round(float((ens_val.argmax(1) == y_val).mean()), 4),
               "ensemble_test": round(float((ens_test.argmax(1) == y_test).mean()), 4)}
        row["validation_gain_over_members"] = round(row["ensemble_validation"] - float(np.mean(members_val)), 4)
        row.update({f"ensemble_test_{name}": s["accuracy"]
                    for name, s in scoring.subsets(ens_test, y_test, ids, classes).items()})
        rows.append(row)
        print(f"tta={row['tta']}: members validation {row['member_validation']}, ensemble "
              f"{row['ensemble_validation']}, test {row['ensemble_test']}", flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| TTA | members' validation (mean) | ensemble validation (gain) | ensemble test | ensemble PrivateTest | ensemble PublicTest |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        mean = sum(r["member_validation"]) / len(r["member_validation"])
        lines.append(f"| {r['tta']} | {mean:.4f} | {r['ensemble_validation']:.4f} ({r['validation_gain_over_members']:+.4f}) | "
                     f"{r['ensemble_test']:.4f} | {r.get('ensemble_test_PrivateTest', float('nan')):.4f} | "
                     f"{r.get('ensemble_test_PublicTest', float('nan')):.4f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=Path, default=ROOT / "reports" / "seeds" / "seeds.json")
    ap.add_argument("--prepared", type=Path, default=PREPARED, help="the prepared FER2013 folder")
    ap.add_argument("--out", type=Path, default=None, help="default: reports/benchmarks/seed_ensemble.json")
    args = ap.parse_args()
    from emorec import files

    if not args.seeds.is_file():
        raise SystemExit(f"--seeds {args.seeds}: not found; run `dvc repro seeds` first")
    study = files.read_json(args.seeds)
    runs = [r for r in study.get("runs", []) if "runs" in r]
    if not runs:
        raise SystemExit(f"--seeds {args.seeds}: no trained study in it")
    record = runs[0]
    run_ids = [r["run_id"] for r in record["runs"]]
    rows = measure(run_ids, args.prepared)
    save("seed_ensemble", {"study": record["run"], "seeds": [r["seed"] for r in record["runs"]],
                           "run_ids": run_ids, "results": rows,
                           "prepared": str(args.prepared.resolve().relative_to(ROOT) if args.prepared.resolve()
                                           .is_relative_to(ROOT) else args.prepared)}, args.out)
    print(markdown(rows))


if __name__ == "__main__":
    main()
