"""The grid fanned out over workers, end to end on loopback, with the engines teams use:
the team MLflow server (PostgreSQL), a folder as the shared DVC remote, and DVC's
run-cache. Three worker clones train different runs of a tiny grid at the same time (one
of them also the seeds study and the student distilled from it, which the report needs) and push with `dvc push --run-cache`;
an aggregator clone then evaluates, reports and registers with `dvc repro --pull` and trains
nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest
from conftest import REPO, SHARED, needs_shared
from test_team_server import folder  # noqa: F401  (the fixture)

from emorec import sandbox
from emorec.experiments.team_server import TeamServer
from emorec.serving.process import free_port


def sh(cmd: list[str], cwd, env, timeout=900) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, f"{cmd} failed in {cwd}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


def fanout_grid(params, work):
    params["grid"].update({"datasets": ["fer2013"], "models": ["cnn", "custom_mobilenet"],
                           "balance": ["plain", "balanced"]})
    params["models"]["custom_mobilenet"]["cpu"]["cells"] = {"datasets": ["fer2013"]}   # 4 runs to share out
    params["seeds"].update({"dataset": "fer2013", "model": "cnn", "balance": "plain", "values": [42, 7]})


@pytest.mark.slow
@pytest.mark.integration
@needs_shared()
def test_three_workers_then_an_aggregator_that_trains_nothing(folder, tmp_path):  # noqa: F811
    from mlflow import MlflowClient

    dvc = shutil.which("dvc")
    server = TeamServer(folder, port=free_port(), pg_port=free_port())
    url = server.start()
    try:
        origin, remote = tmp_path / "origin", tmp_path / "dvc-remote"
        sandbox.create(REPO, origin, SHARED, per_class=20, edit=fanout_grid)
        env = sandbox.clean_env(origin)
        sh([dvc, "remote", "add", "--default", "shared", str(remote)], origin, env)
        sandbox.git(["commit", "-qam", "shared DVC remote"], origin, env)
        # the job matrix: the runs of the active profile, from params
        runs = [r["name"] for r in _json_line(sh([sys.executable, "-m", "emorec.cli", "grid", "--json"], origin, env))]
        assert len(runs) == 4, runs

        workers = []
        for i in range(3):
            clone = tmp_path / f"worker{i}"
            sandbox.git(["clone", "-q", str(origin), str(clone)], tmp_path, env)
            worker_env = {**sandbox.clean_env(clone), "MLFLOW_TRACKING_URI": url}
            targets = [f"train@{name}" for name in runs[i::3]] + (["seeds", "distill"] if i == 0 else [])
            script = f"{dvc} repro {' '.join(targets)} && {dvc} push --run-cache"
            workers.append((clone, subprocess.Popen(["bash", "-c", script], cwd=clone, env=worker_env,
                                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
        for clone, proc in workers:
            out = proc.communicate(timeout=1500)[0]
            assert proc.returncode == 0, f"{clone.name} failed:\n{out[-4000:]}"
            assert "database is locked" not in out

        aggregator = tmp_path / "aggregator"
        sandbox.git(["clone", "-q", str(origin), str(aggregator)], tmp_path, env)
        agg_env = {**sandbox.clean_env(aggregator), "MLFLOW_TRACKING_URI": url}
        sh([dvc, "fetch", "--run-cache"], aggregator, agg_env)   # the run-cache entries; no lock to check out yet
        out = sh([dvc, "repro", "--pull", "report", "register@fer2013"], aggregator, agg_env, timeout=1500)
        trained = re.findall(r"Running stage '(train@[^']+)'", out)
        restored = re.findall(r"Stage '(train@[^']+)' is cached", out)
        assert trained == [] and sorted(restored) == sorted(f"train@{r}" for r in runs), out[-3000:]
        for study in ("seeds", "distill"):
            assert f"Running stage '{study}'" not in out and f"Stage '{study}' is cached" in out, out[-3000:]
        assert "## Noise over seeds" in (aggregator / "reports" / "results.md").read_text()
        for name in runs:
            assert (aggregator / "metrics" / f"{name}.json").exists()

        client = MlflowClient(url)
        experiment = client.get_experiment_by_name("emorec")
        logged = client.search_runs([experiment.experiment_id], max_results=100)
        # the seeds study's parent and its run, and the student distilled from them
        study = ["seeds-fer2013-cnn-plain", "fer2013-cnn-plain-seed7", "fer2013-cnn-distilled"]
        assert sorted(r.info.run_name for r in logged) == sorted(runs + study)   # every run, none lost, none twice
        assert all(r.info.status == "FINISHED" for r in logged)
        versions = client.search_model_versions("name = 'emorec-fer2013'")
        assert len(versions) == 1   # registered once, by the aggregator
        assert client.get_model_version_by_alias("emorec-fer2013", "champion").version == versions[0].version
    finally:
        server.stop()


def _json_line(text: str) -> list:
    """`emorec grid --json` prints one JSON line; warnings may surround it."""
    return next(json.loads(line) for line in text.splitlines() if line.startswith("["))
