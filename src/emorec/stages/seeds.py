"""DVC stage `seeds`: chosen runs re-trained with more seeds (mean +- std)."""

from __future__ import annotations

from pathlib import Path

from emorec import files, grid, runs
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.errors import EmorecError


def run(params: dict | None = None, root: Path | None = None) -> Path:
    """Re-train chosen grid cells with more seeds; the grid's own seed run is reused."""
    from emorec.experiments import tracking
    from emorec.training import sampling, studies

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg_seeds = section(params, "seeds")
    grid_seed = int(section(params, "seed"))
    values = [int(s) for s in cfg_seeds["values"]]
    if len(set(values)) != len(values) or len(values) < 2:
        raise EmorecError("params.yaml: seeds.values must list at least two different seeds")
    out = paths.root / "reports" / "seeds" / "seeds.json"
    experiment_id = tracking.configure(paths.root, section(params, "mlflow", "experiment"))
    records = []
    for dataset, model, balance in [(cfg_seeds["dataset"], cfg_seeds["model"], cfg_seeds.get("balance", "plain"))]:
        grid.check_names(params, dataset, model, balance)
        run_name = paths.run_name(dataset, model, balance)
        reason = (prepared.missing_reason(paths.prepared(dataset))
                  or runs.not_trained(params, paths.root, grid.Run(dataset, model, balance)))
        if reason:
            records.append({"run": run_name, "skipped": reason})
            continue
        x_tr, y_tr, classes = prepared.load_part(paths.prepared(dataset), prepared.train_part(balance))
        # the faces' sources, read once for every seed, when train.source_prior weights them
        fit_sources = (sampling.part_sources(paths.prepared(dataset), prepared.train_part(balance), len(y_tr))
                       if studies.study_config(params, dataset, model, grid_seed)[0].source_prior else None)
        x_val, y_val, _ = prepared.load_part(paths.prepared(dataset), "val")
        x_te, y_te, _ = prepared.load_part(paths.prepared(dataset), "test")
        ids_te = prepared.load_ids(paths.prepared(dataset), "test")
        tags = {"dataset": dataset, "model": model, "balance": balance, "study": "seeds",
                "git_commit": tracking.git_commit(paths.root), "hardware": tracking.hardware(),
                "dvc_stage": tracking.dvc_stage("seeds")}
        parent = studies.study_parent(experiment_id, f"seeds-{run_name}", {"seeds": values}, tags)
        results, members = [], []
        for s in values:
            if s == grid_seed:
                # the grid already trained this one; scored here from its model, not read from its
                # evaluation, so the study's run-cache entry depends on the trained run alone
                model_dir = paths.model_dir(dataset, model, balance)
                members.append(studies.model_probs(model_dir, {"val": x_val, "score": x_te}))
                results.append({"seed": s, "source": "grid run",
                                "run_id": files.read_json(model_dir / "run.json").get("run_id"),
                                **studies.score_probs(members[-1]["score"], y_te, ids_te, classes)})
                continue
            cfg, arch = studies.study_config(params, dataset, model, s)
            print(f"{run_name}: seed {s}")
            members.append({})
            results.append({"seed": s, "source": "seeds stage", **studies.train_and_score(
                model_name=model, arch=arch, cfg=cfg, x_fit=x_tr, y_fit=y_tr, x_val=x_val, y_val=y_val,
                x_score=x_te, y_score=y_te, classes=classes, run_name=f"{run_name}-seed{s}",
                experiment_id=experiment_id, log_params={"seed": s}, score_ids=ids_te, probs_out=members[-1],
                fit_sources=fit_sources,
                tags={**tags, "mlflow.parentRunId": parent, "seed": str(s)})})
        cfg, _ = studies.study_config(params, dataset, model, grid_seed)
        records.append({"run": run_name, "dataset": dataset, "model": model, "balance": balance,
                        "epochs": cfg.epochs, "max_train_images": cfg.max_train_images,
                        "mlflow_parent_run_id": parent, **studies.Summary(results).to_dict(),
                        "ensemble": studies.ensemble_score(members, y_val, y_te, ids_te, classes)})
    from emorec.reporting import tables as report

    files.write_json(out, {"seeds": values, "hardware": tracking.hardware(), "runs": records})
    files.write_text(out.with_suffix(".md"), report.seeds_markdown(values, records))
    print(report.seeds_markdown(values, records))
    return out

