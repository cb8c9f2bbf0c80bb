"""What `dvc repro` itself costs: a cold run, a no-op run, and a run after one model's
params change (which must retrain that model only, plus what reads its results).

    python benchmarks/dvc_overhead.py sandbox            # the whole DAG at tiny scale, timed
    python benchmarks/dvc_overhead.py project [--dir .]  # a full, up-to-date checkout

`sandbox` copies the project into a temporary git repository with the CI smoke params
(30 real images per class, 1 epoch; `emorec.sandbox`) and times the three runs.
`project` times a no-op `dvc repro` on a real checkout and then, with one model's
learning rate changed in params.yaml for a moment, asks `dvc status` which stages are
stale, without retraining anything; params.yaml is restored byte for byte.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RAN = re.compile(r"Running stage '([^']+)'")


def _dvc(args: list[str], cwd: Path, env: dict | None = None) -> tuple[float, str]:
    dvc = shutil.which("dvc") or "dvc"
    start = time.perf_counter()
    out = subprocess.run([dvc, *args], cwd=cwd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise SystemExit(f"dvc {' '.join(args)} failed in {cwd}:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    return seconds, out.stdout


def _bump_learning_rate(params_file: Path, model: str) -> str:
    """Halve `models.<model>.learning_rate` in place; returns the key changed."""
    params = yaml.safe_load(params_file.read_text())
    block = params["models"][model]
    block["learning_rate"] = float(block.get("learning_rate") or 1e-3) / 2
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    return f"models.{model}.learning_rate"


def _owner(stage: str, model: str) -> bool:
    """Whether a stage trains or scores `model` itself (matrix names carry the model)."""
    return f"-{model}-" in stage


def sandbox(model: str) -> dict:
    from emorec import sandbox as sb

    shared = ROOT.parent / "shared"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "repo"
        sb.create(ROOT, work, shared)
        env = sb.clean_env()
        cold, out = _dvc(["repro"], work, env)
        cold_stages = RAN.findall(out)
        noop, out = _dvc(["repro"], work, env)
        if RAN.findall(out):
            raise SystemExit(f"the second dvc repro ran stages again: {RAN.findall(out)}")
        key = _bump_learning_rate(work / "params.yaml", model)
        changed, out = _dvc(["repro"], work, env)
        ran = RAN.findall(out)
    return {"where": "sandbox (CI smoke params: 30 images per class, 1 epoch, cnn + custom_mobilenet)",
            "cold_s": cold, "cold_stages": len(cold_stages), "noop_s": noop,
            "changed_key": key, "changed_s": changed, "changed_stages": ran,
            "other_models_retrained": [s for s in ran if s.startswith("train@") and not _owner(s, model)]}


def project(directory: Path, model: str) -> dict:
    params_file = directory / "params.yaml"
    status_s, out = _dvc(["status", "--json"], directory)
    stale = json.loads(out or "{}")
    if stale:
        raise SystemExit(f"{directory} is not up to date ({len(stale)} stale stages, e.g. {next(iter(stale))}); "
                         "run `dvc repro` there first")
    noop, out = _dvc(["repro"], directory)
    if RAN.findall(out):
        raise SystemExit(f"dvc repro ran stages in {directory}: {RAN.findall(out)}")
    original = params_file.read_bytes()
    try:
        key = _bump_learning_rate(params_file, model)
        changed_status_s, out = _dvc(["status", "--json"], directory)
        would_run = sorted(json.loads(out or "{}"))
    finally:
        params_file.write_bytes(original)
    from emorec.config import load_params

    grid = load_params(params_file)["grid"]
    trains = [s for s in would_run if s.startswith("train@")]
    return {"where": f"{directory} (full data, grid profile {grid.get('profile')})", "status_s": status_s,
            "noop_s": noop, "changed_key": key, "changed_status_s": changed_status_s,
            "stale_after_change": would_run, "trains_stale": trains,
            "other_models_stale": [s for s in trains if not _owner(s, model)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("where", choices=["sandbox", "project"])
    parser.add_argument("--dir", type=Path, default=ROOT, help="the checkout for `project`")
    parser.add_argument("--model", default="custom_mobilenet", help="the model whose params change")
    parser.add_argument("--json", type=Path, default=None,
                        help="default reports/benchmarks/dvc_overhead_<where>.json")
    args = parser.parse_args()
    r = sandbox(args.model) if args.where == "sandbox" else project(args.dir.resolve(), args.model)
    print(r["where"])
    if args.where == "sandbox":
        print(f"cold dvc repro          {r['cold_s']:8.1f} s  ({r['cold_stages']} stages)")
        print(f"no-op dvc repro         {r['noop_s']:8.1f} s")
        print(f"after {r['changed_key']}: {r['changed_s']:.1f} s, {len(r['changed_stages'])} stages ran: "
              + ", ".join(r["changed_stages"]))
    else:
        print(f"dvc status              {r['status_s']:8.1f} s")
        print(f"no-op dvc repro         {r['noop_s']:8.1f} s")
        print(f"after {r['changed_key']}: dvc status {r['changed_status_s']:.1f} s, "
              f"{len(r['stale_after_change'])} stages stale: " + ", ".join(r["stale_after_change"]))
    others = r["other_models_retrained"] if args.where == "sandbox" else r["other_models_stale"]
    print("training stages of other models: " + (", ".join(others) or "none"))
    import _common

    print(f"wrote {_common.save(f'dvc_overhead_{args.where}', r, args.json)}")


if __name__ == "__main__":
    main()
