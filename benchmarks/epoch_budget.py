"""What a shorter schedule costs: accuracy of one recipe trained for fewer epochs, against
the CPU minutes it takes. The 60-minute default run the accuracy issue asks for holds about a
fifth of the epochs the grid and its studies spend now, so this curve is the trade it makes.

    python benchmarks/epoch_budget.py --runs cpu-10ep-seed42 cpu-15ep-seed42 cpu-20ep-seed42 \
        --pipeline reports/benchmarks/fer2013_epyc

Rows come from reports/recipe/runs.json (standalone runs scored by recipe_report); the
pipeline's own run (its run.json and evaluation.json) gives the full-length point. An epoch
of one recipe costs the same whatever the schedule, so every point is charged one measured
epoch: the pipeline run's mean (its training seconds / epochs), or without it the median
epoch of the rows. A slow stretch of a noisy host then moves no point on its own. Writes
reports/benchmarks/epoch_budget.{json,png}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, machine  # noqa: E402

PAPER_CNN = 0.63          # the paper's CNN on FER2013 (its Table IX), for the plot
ISSUE_TARGET = 0.66       # the accuracy issue's paper-protocol target for the champion


def recipe_point(row: dict) -> dict:
    """One scored standalone run -> the curve's point (minutes set by `charge`)."""
    if "scored" not in row:
        raise SystemExit(f"{row['name']}: not scored on test yet (run recipe_report on its folder)")
    return {"name": row["name"], "epochs": row["epochs_run"],
            "epoch_seconds_median": round(statistics.median(row["epoch_seconds"]), 1),
            "validation": round(row["val_accuracy"], 4),
            "test": row["scored"]["test"]["accuracy"],
            "private_test": row["scored"].get("subsets", {}).get("PrivateTest", {}).get("accuracy"),
            "hardware": row.get("hardware"), "source": "reports/recipe/runs.json"}


def pipeline_point(folder: Path) -> dict:
    """The pipeline's run of the same recipe: its run.json (time) and evaluation.json (figures)."""
    run = json.loads((folder / "run.json").read_text())
    ev = json.loads((folder / "evaluation.json").read_text())
    return {"name": f"pipeline {folder.name}", "epochs": run["epochs_run"],
            "epoch_seconds_mean": round(run["train_seconds"] / run["epochs_run"], 1),
            "validation": round(ev["validation"]["accuracy"], 4), "test": round(ev["test"]["accuracy"], 4),
            "private_test": ev.get("subsets", {}).get("PrivateTest", {}).get("accuracy"),
            "source": str(folder.relative_to(ROOT)) if folder.is_relative_to(ROOT) else str(folder)}


def charge(points: list[dict]) -> float:
    """Seconds of one epoch for every point: the pipeline run's mean epoch where there is one,
    else the median of the rows' median epochs; each point's minutes follow from it."""
    pipeline = [p["epoch_seconds_mean"] for p in points if "epoch_seconds_mean" in p]
    per_epoch = pipeline[0] if pipeline else statistics.median(p["epoch_seconds_median"] for p in points)
    for p in points:
        p["minutes"] = round(per_epoch * p["epochs"] / 60, 1)
    return per_epoch


def plot(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted(points, key=lambda p: p["epochs"])
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    x = [p["minutes"] for p in points]
    ax.plot(x, [p["validation"] for p in points], "o-", label="validation (chooses)")
    ax.plot(x, [p["test"] for p in points], "s-", label="test, 7,178 faces (reports only)")
    for p in points:
        ax.annotate(f"{p['epochs']} ep", (p["minutes"], p["test"]), textcoords="offset points", xytext=(4, -12),
                    fontsize=8)
    ax.axhline(PAPER_CNN, color="grey", ls="--", lw=1, label=f"paper's CNN, {PAPER_CNN}")
    ax.axhline(ISSUE_TARGET, color="tab:red", ls=":", lw=1, label=f"issue's champion target, {ISSUE_TARGET}")
    ax.set_xlabel("training minutes on this 2-core CPU (one measured epoch x epochs)")
    ax.set_ylabel("accuracy")
    ax.set_title("FER2013 CNN, CPU recipe, seed 42: fewer epochs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", nargs="+", required=True, help="names of scored rows in reports/recipe/runs.json")
    ap.add_argument("--recipe", type=Path, default=ROOT / "reports" / "recipe" / "runs.json")
    ap.add_argument("--pipeline", type=Path, default=None,
                    help="a folder with the pipeline run's run.json and evaluation.json (the full-length point)")
    ap.add_argument("--out", type=Path, default=RESULTS / "epoch_budget.json")
    args = ap.parse_args(argv)
    rows = {r["name"]: r for r in json.loads(args.recipe.read_text())}
    missing = [n for n in args.runs if n not in rows]
    if missing:
        raise SystemExit(f"--runs: {missing} not in {args.recipe}")
    points = [recipe_point(rows[n]) for n in args.runs]
    if args.pipeline is not None:
        points.append(pipeline_point(args.pipeline.resolve()))
    per_epoch = charge(points)
    points.sort(key=lambda p: p["epochs"])
    print(f"every point charged {per_epoch:.1f} s an epoch")
    for p in points:
        print(f"{p['epochs']:>3} epochs, {p['minutes']:>5.1f} min: validation {p['validation']:.4f}, "
              f"test {p['test']:.4f}, PrivateTest {p['private_test']}")
    out = {"machine": machine(), "epoch_seconds": round(per_epoch, 1), "points": points,
           "note": "minutes = epoch_seconds x epochs (one measured epoch for every point); validation "
                   "chooses, test reports only"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(args.out)
    plot(points, args.out.with_suffix(".png"))
    print(f"-> {args.out} and {args.out.with_suffix('.png').name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
