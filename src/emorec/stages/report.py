"""DVC stage `report`: results.md beside the paper's numbers, and the reports index."""

from __future__ import annotations

import json
from pathlib import Path

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.errors import EmorecError
from emorec.stages import distill_summary


def run(params: dict | None = None, root: Path | None = None) -> Path:
    from emorec.reporting import tables as report

    params = params or load_params()
    paths = Paths(root or project_root())
    active, _ = runs.runs(params, paths.root)
    evaluated = {r["provenance"]["run_name"]: r for r in report.collect(paths.root / "reports" / "evaluation")}
    missing = [r.name for r in active if r.name not in evaluated]
    if missing:
        raise EmorecError(f"{paths.root / 'reports' / 'evaluation'}: no evaluation of {', '.join(missing)}; "
                          "run the evaluate stage first")
    rows = [evaluated[r.name] for r in active]
    for cell in grid.cells(params, "full"):   # every paper cell we do not train says why
        if cell not in active:
            reason = runs.not_trained(params, paths.root, cell)
            kind = "data" if cell.dataset in runs.runs(params, paths.root)[1] else "profile"
            rows.append(report.skipped_row(cell.name, *cell, reason, kind))
    seeds_json = paths.root / "reports" / "seeds" / "seeds.json"
    if not seeds_json.is_file():
        raise EmorecError(f"{seeds_json}: missing; run the seeds stage first (dvc repro seeds)")
    distill_json = distill_summary.record_path(paths.root)
    if not distill_json.is_file():
        raise EmorecError(f"{distill_json}: missing; run the distill stage first (dvc repro distill)")
    out = paths.root / "reports" / "results.md"
    files.write_text(out, report.comparison_markdown(rows, files.read_json(seeds_json)) + "\n"
                     + "\n".join(distill_summary.section(files.read_json(distill_json))))
    cv = params.get("crossval") or {}
    studies = {"crossval": f"{cv.get('model')} on {cv.get('dataset')}, k = {cv.get('folds')}",
               "explain": [paths.run_name(*grid.Run.parse(r)) for r in (params.get("explain") or {}).get("runs", [])]}
    files.write_text(paths.root / "reports" / "README.md", report.index_markdown(
        section(params, "datasets"), section(params, "grid"), section(params, "pca", "datasets"),
        rows, studies))
    summary = {r["provenance"]["run_name"]: (
        {"test_accuracy": round(r["test"]["accuracy"], 4), "test_macro_f1": round(r["test"]["macro_f1"], 4)}
        if "test" in r else {"skipped": r["skipped"]}) for r in rows}
    print(json.dumps(summary, indent=2))
    return out
