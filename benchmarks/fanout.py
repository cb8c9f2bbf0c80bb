"""The grid fanned out: wall time of 1 worker against 3, and what the aggregator re-trains.

    python benchmarks/fanout.py            # the tiny sandbox grid (4 runs, 20 faces/class)
    python benchmarks/fanout.py --per-class 100 --epochs 3

Starts the team MLflow server (PostgreSQL) and a folder DVC remote on loopback, makes a
sandbox of the project, then twice: N worker clones each run `dvc repro train@<run>` for
their share of `emorec grid --json` (round robin), concurrently, and `dvc push
--run-cache`; the wall time is from the first worker's start to the last one's push. Then an
aggregator clone runs `dvc fetch --run-cache` and `dvc repro --pull report register@fer2013`,
and the train stages it ran are counted (must be 0). Results: reports/benchmarks/fanout.json."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, save  # noqa: E402


def sh(cmd, cwd, env):
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{cmd} failed in {cwd}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return result.stdout + result.stderr


def one_round(origin: Path, workers: int, url: str, scratch: Path, runs: list[str]) -> dict:
    from emorec import sandbox

    dvc = shutil.which("dvc")
    env = sandbox.clean_env(origin)
    remote = scratch / f"remote-{workers}"
    clones = []
    for i in range(workers):
        clone = scratch / f"w{workers}-{i}"
        sandbox.git(["clone", "-q", str(origin), str(clone)], scratch, env)
        sh([dvc, "remote", "add", "--local", "--default", "shared", str(remote)], clone, sandbox.clean_env(clone))
        clones.append(clone)
    start = time.perf_counter()
    procs = []
    for i, clone in enumerate(clones):
        targets = " ".join(f"train@{r}" for r in runs[i::workers])
        procs.append(subprocess.Popen(["bash", "-c", f"{dvc} repro {targets} && {dvc} push --run-cache"], cwd=clone,
                                      env={**sandbox.clean_env(clone), "MLFLOW_TRACKING_URI": url},
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    for proc in procs:
        out = proc.communicate()[0]
        if proc.returncode != 0:
            raise SystemExit(f"a worker failed:\n{out[-3000:]}")
    wall = time.perf_counter() - start
    aggregator = scratch / f"agg-{workers}"
    sandbox.git(["clone", "-q", str(origin), str(aggregator)], scratch, env)
    agg_env = {**sandbox.clean_env(aggregator), "MLFLOW_TRACKING_URI": url}
    sh([dvc, "remote", "add", "--local", "--default", "shared", str(remote)], aggregator, agg_env)
    sh([dvc, "fetch", "--run-cache"], aggregator, agg_env)
    t = time.perf_counter()
    out = sh([dvc, "repro", "--pull", "report", f"register@{runs[0].split('-')[0]}"], aggregator, agg_env)
    return {"workers": workers, "wall_s": round(wall, 1), "aggregator_s": round(time.perf_counter() - t, 1),
            "aggregator_trained": len(re.findall(r"Running stage 'train@", out)),
            "aggregator_restored": len(re.findall(r"Stage 'train@[^']+' is cached", out))}


def main() -> None:
    from emorec import sandbox
    from emorec.experiments.team_server import TeamServer
    from emorec.serving.process import free_port

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    shared = ROOT.parent / "shared"
    scratch = Path(tempfile.mkdtemp(prefix="emorec-fanout-", dir="/tmp"))
    scratch.chmod(0o755)

    def grid(params, work):
        params["grid"].update({"datasets": ["fer2013"], "models": ["cnn", "custom_mobilenet"],
                               "balance": ["plain", "balanced"]})
        params["train"]["epochs"] = args.epochs

    rounds = []
    try:
        for workers in (1, 3):       # a fresh server and remote per round: nothing carries over
            server = TeamServer(scratch / f"server-{workers}", port=free_port(), pg_port=free_port())
            url = server.start()
            try:
                origin = scratch / f"origin-{workers}"
                sandbox.create(ROOT, origin, shared, per_class=args.per_class, edit=grid)
                listed = sh([sys.executable, "-m", "emorec.cli", "grid", "--json"], origin, sandbox.clean_env(origin))
                runs = [r["name"] for r in json.loads(next(ln for ln in listed.splitlines() if ln.startswith("[")))]
                row = one_round(origin, workers, url, scratch, runs)
                rounds.append(row)
                print(f"{workers} worker(s): {len(runs)} runs in {row['wall_s']} s; aggregator {row['aggregator_s']} s, "
                      f"trained {row['aggregator_trained']}, restored {row['aggregator_restored']}", flush=True)
            finally:
                server.stop()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratio = rounds[0]["wall_s"] / rounds[1]["wall_s"]
    print(f"3 workers vs 1: {ratio:.2f}x faster (wall {rounds[0]['wall_s']} s vs {rounds[1]['wall_s']} s)")
    save("fanout", {"grid": "fer2013 x {cnn, custom_mobilenet} x {plain, balanced}",
                    "per_class": args.per_class, "epochs": args.epochs, "rounds": rounds,
                    "speedup_3_vs_1": round(ratio, 2)})


if __name__ == "__main__":
    main()
