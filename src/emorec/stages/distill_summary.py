"""The `distill` stage's record as results.md shows it (read by `report`, written by `distill`);
kept apart from the stage so the report does not depend on the training code."""

from __future__ import annotations

from pathlib import Path


def record_path(root: Path) -> Path:
    return Path(root) / "reports" / "distill" / "distill.json"


def section(record: dict) -> list[str]:
    """results.md's part: the student trained towards the seeds ensemble, scored like a grid run."""
    if "skipped" in record:
        return ["## Distilled from the seeds ensemble", "", f"| {record['run']} | needs data: {record['skipped']} |",
                "|---|---|", ""]
    prov, teacher, test = record["provenance"], record["teacher"], record["test"]
    val, cal = record["validation"], record["calibration"]
    lines = ["## Distilled from the seeds ensemble", "",
             f"The `distill` stage: `{prov['model']}` trained towards {1 - teacher['weight']:g} x its label + "
             f"{teacher['weight']:g} x the mean probabilities of the seeds study's {len(teacher['members'])} members "
             f"(views: {teacher['views'] or 'single'}; ensemble validation accuracy {teacher['validation_accuracy']:.4f}, "
             f"members {', '.join(f'{a:.4f}' for a in teacher['member_validation_accuracy'])}). Seed {prov['seed']}, "
             f"{prov['epochs_run']} of {prov['epochs']} epochs (best {prov['best_epoch']}), "
             f"{prov['train_seconds'] / 60:.1f} min on {prov['hardware']}; test split as above. "
             "`register` offers it as a candidate for its dataset: validation decides.", "",
             "| run | validation accuracy / macro-F1 | test accuracy | macro-F1 | per official sub-split "
             "| test-time views (validation gain) | ECE raw -> scaled (T) |", "|---|---|---|---|---|---|---|"]
    subsets = ", ".join(f"{name} {v['accuracy']:.4f}" for name, v in (record.get("subsets") or {}).items()) or "-"
    tta = record.get("tta")
    views = "-"
    if tta:
        views = (f"{tta['views']}: {tta['accuracy']:.4f}"
                 + "".join(f", {n} {v['accuracy']:.4f}" for n, v in (tta.get("subsets") or {}).items())
                 + f" ({tta['validation_gain'] * 100:+.1f})")
    lines.append(f"| {prov['run_name']} | {val['accuracy']:.4f} / {val['macro_f1']:.4f} | {test['accuracy']:.4f} | "
                 f"{test['macro_f1']:.4f} | {subsets} | {views} | {cal['ece']['test_raw']:.3f} -> "
                 f"{cal['ece']['test_scaled']:.3f} ({cal['temperature']:.2f}) |")
    return lines + [""]


def markdown(record: dict) -> str:
    return "\n".join(["# Distilled from the seeds ensemble: the `distill` stage", "",
                      "Its row also stands in [results.md](../results.md); the figures beside this file: "
                      "curves.png, val_confusion.png, confusion_normalized.png, reliability.png.", ""]
                     + section(record)[2:]) + "\n"
