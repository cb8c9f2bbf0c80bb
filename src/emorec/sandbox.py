"""A scratch copy of the project at a tiny scale: the whole DVC DAG on 30 real images per
class and one epoch, in its own git repository, so the real results are never touched.

The CI smoke test and `benchmarks/dvc_overhead.py` both run the pipeline this way."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

GENERATED = ("dvc.lock", "metrics", "reports")
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "sandbox", "GIT_AUTHOR_EMAIL": "sandbox@example.invalid",
                "GIT_COMMITTER_NAME": "sandbox", "GIT_COMMITTER_EMAIL": "sandbox@example.invalid"}


def project_files(repo: Path) -> list[str]:
    """Files git would commit: tracked ones and untracked ones that are not ignored."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                         cwd=repo, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if (repo / f).is_file()]


def _absolute_shared(node, shared: Path):
    """`../shared/...` is relative to the real checkout; the copy lives elsewhere."""
    if isinstance(node, dict):
        return {k: _absolute_shared(v, shared) for k, v in node.items()}
    if isinstance(node, list):
        return [_absolute_shared(v, shared) for v in node]
    if isinstance(node, str) and node.startswith("../shared"):
        return node.replace("../shared", str(shared), 1)
    return node


def tiny_params(params: dict, shared: Path, per_class: int = 30) -> dict:
    """`params` scaled down so every stage runs in seconds on real data."""
    params = _absolute_shared(params, shared)
    for block in params["fetch"].values():
        block.update({"max_per_class": per_class, "kaggle_download": False})
    params["train"]["epochs"] = 1
    # two architectures cover the DAG's paths (a flat CNN, a features + head model with the
    # offline weights fallback); tests/test_model_zoo.py builds, trains and round-trips every
    # registered model. A ViT here could win the registry and make export (TFLite, ONNX,
    # SavedModel of 88 M parameters) the slowest, most memory-hungry step.
    params["grid"]["models"] = ["cnn", "custom_mobilenet"]
    for name in params["models"]:
        cpu = params["models"][name].get("cpu") or {}
        cpu["epochs"] = 1
        cpu.pop("max_train_images", None)
        if cpu.get("swa_epochs"):
            cpu["swa_epochs"] = None        # one epoch has no tail to average
        if params["models"][name].get("weights"):
            params["models"][name]["allow_download"] = False   # offline: the scratch fallback
    params["crossval"].update({"folds": 2, "epochs": 1, "max_images": 60})
    params["seeds"]["values"] = [params["seed"], 7]
    params["seeds"].update({"dataset": "fer2013", "model": "cnn", "balance": "plain"})
    params["distill"]["epochs"] = 1
    params["explain"]["per_class"] = 1
    params["train_overrides"] = dict.fromkeys(params["train_overrides"])   # keys kept: dvc.yaml names them
    params["export"].update({"parity_images": 100, "latency_runs": 5,
                             # a 1-epoch model's near-uniform probabilities make quantized top-1
                             # flips expected; the float formats keep the real threshold
                             "min_agreement": {"float": 0.999, "quantized": 0.0}})
    return params


def clean_env(work: Path | None = None) -> dict:
    """The caller's environment without MLflow/DVC/emorec settings, plus a git identity.
    With `work`, the copy's own `src/` comes first on PYTHONPATH, so its stages run the
    copied code (what its dvc.lock hashes), not the installed checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "EMOREC_"))}
    if work is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(work / "src"), *filter(None, [env.get("PYTHONPATH")])])
    return {**env, **GIT_IDENTITY}


def git(args: list[str], work: Path, env: dict) -> None:
    result = subprocess.run(["git", *args], cwd=work, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {work}: {result.stderr[-2000:]}")


def create(repo: Path, work: Path, shared: Path, per_class: int = 30,
           edit=None) -> dict:
    """Copy the project's files into `work`, drop generated results, write the tiny params
    (after `edit(params, work)`, if given) and the grid of runs they name, and commit it all
    in a new git repository. Returns the params written."""
    for rel in project_files(repo):
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, work / rel)
    for generated in GENERATED:
        path = work / generated
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    params = tiny_params(yaml.safe_load((work / "params.yaml").read_text()), shared, per_class)
    if edit is not None:
        edit(params, work)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = clean_env(work)
    result = subprocess.run([sys.executable, "-m", "emorec.cli", "grid", "--write"], cwd=work,
                            capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"emorec grid --write failed in {work}: {result.stderr[-2000:]}")
    git(["init", "-q"], work, env)
    git(["add", "-A"], work, env)
    git(["commit", "-qm", "sandbox"], work, env)
    return params
