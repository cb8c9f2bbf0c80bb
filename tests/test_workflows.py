"""The GitHub Actions workflows are valid (actionlint), and the retrain workflow's own logic
(dispatch inputs -> dvc exp run overrides, job summary) works locally."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml
from conftest import REPO

from emorec.config import load_params
from emorec.errors import EmorecError
from emorec.experiments import retrain

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    exe = shutil.which("actionlint")
    assert exe, "actionlint must be installed (pip install -e '.[dev]')"
    return exe


def test_workflows_pass_actionlint():
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "retrain.yml"}
    result = subprocess.run([_actionlint(), "-no-color", *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.inputs.nope.bad( }}\n")
    result = subprocess.run([_actionlint(), "-no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode != 0


def test_retrain_triggers_inputs_and_secrets():
    wf = yaml.safe_load((REPO / ".github" / "workflows" / "retrain.yml").read_text())
    triggers = wf[True] if True in wf else wf["on"]   # YAML 1.1 reads `on` as True
    assert "schedule" in triggers and "workflow_dispatch" in triggers
    assert set(triggers["workflow_dispatch"]["inputs"]) >= {"datasets", "models", "epochs", "promote"}
    text = (REPO / ".github" / "workflows" / "retrain.yml").read_text()
    assert "secrets.MLFLOW_TRACKING_URI" in text and "dvc push" in text and "GITHUB_STEP_SUMMARY" in text
    assert "http://" not in text and "https://" not in text.split("# Variables")[1]  # no URIs committed


def test_overrides_from_dispatch_inputs():
    params = load_params()
    args = retrain.overrides(params, "fer2013, affectnet_pca,combined", "cnn,custom_mobilenet", "40", "full", True)
    joined = " ".join(args)
    assert "-S grid.datasets=[fer2013,affectnet_pca,combined]" in joined
    assert "-S grid.models=[cnn,custom_mobilenet]" in joined
    assert "-S train.epochs=40" in joined and "-S grid.profile=full" in joined
    assert "auto_promote" not in joined


def test_no_promotion_registers_a_challenger_and_exports_it():
    args = " ".join(retrain.overrides(load_params()))
    assert "register.auto_promote=false" in args and "export.alias=challenger" in args
    assert "infer.model=models:/emorec-fer2013@challenger" in args


@pytest.mark.parametrize("kwargs, message", [
    ({"datasets": "imagenet"}, "unknown dataset"),
    ({"models_": "resnet1000"}, "unknown model"),
    ({"epochs": "ten"}, "positive integer"),
    ({"scope": "gpu"}, "cpu or full"),
])
def test_bad_inputs_fail_before_training(kwargs, message):
    with pytest.raises(EmorecError, match=message):
        retrain.overrides(load_params(), **kwargs)


def test_summary_has_the_comparison_and_registry(tmp_path):
    (tmp_path / "reports" / "registry").mkdir(parents=True)
    (tmp_path / "reports" / "results.md").write_text("# Results\n\n| model |\n\n## Provenance\nlong table\n")
    (tmp_path / "reports" / "registry" / "fer2013.json").write_text(
        '{"model_name": "emorec-fer2013", "version": 3, "promoted": false, "reason": "left to a person"}')
    text = retrain.summary(tmp_path, "origin/main")
    assert "# Results" in text and "long table" not in text and "v3 not promoted" in text


def test_retrain_fans_out_one_job_per_run_and_registers_only_in_the_aggregate():
    """The matrix is the grid's run list (the plan job's own command, run here); train jobs
    run only `train@<run>` and push the run-cache; the aggregate job alone reaches register."""
    import json
    import re
    import sys

    wf = yaml.safe_load((REPO / ".github" / "workflows" / "retrain.yml").read_text())
    jobs = wf["jobs"]
    assert set(jobs) == {"plan", "train", "aggregate"}
    assert jobs["train"]["strategy"]["matrix"]["run"] == "${{ fromJSON(needs.plan.outputs.runs) }}"
    assert jobs["train"]["runs-on"] == jobs["aggregate"]["runs-on"] == "${{ vars.RETRAIN_RUNNER || 'ubuntu-latest' }}"
    train_steps = "\n".join(step.get("run", "") for step in jobs["train"]["steps"])
    assert 'dvc exp run $OVERRIDES "train@$RUN"' in train_steps and "dvc push --run-cache" in train_steps
    assert "register" not in train_steps
    aggregate = "\n".join(step.get("run", "") for step in jobs["aggregate"]["steps"])
    assert "dvc fetch --run-cache" in aggregate and "dvc exp run --pull" in aggregate
    plan = next(step["run"] for step in jobs["plan"]["steps"] if step.get("id") == "runs")
    snippet = re.search(r"python -c '([^']+)'", plan).group(1)
    listed = subprocess.run([sys.executable, "-m", "emorec.cli", "grid", "--json", "-S", "grid.datasets=[fer2013]"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    names = subprocess.run([sys.executable, "-c", snippet.replace('open("runs.json")', "sys.stdin")
                            .replace("import json;", "import json, sys;")], input=listed, capture_output=True,
                           text=True, check=True).stdout
    assert json.loads(names) == [r["name"] for r in json.loads(listed)] and "fer2013-cnn-plain" in json.loads(names)


def test_every_set_param_the_docs_show_is_one_dvc_accepts(tmp_path):
    """A `dvc exp run -S key=value` in the README for a key params.yaml does not list fails
    with "Invalid `--set-param` value" (Hydra needs `++key=value` to add it). Each override
    the docs show goes through DVC's own parser against params.yaml."""
    import re

    from dvc.utils.hydra import apply_overrides

    shown = set()
    for doc in (REPO / "README.md", REPO / "DEVELOPERS.md"):
        for line in doc.read_text().splitlines():
            if "dvc exp run" in line or line.lstrip().startswith(("-S", "OVERRIDES=")):
                shown |= {m.split("`")[0].rstrip(",;") for m in re.findall(r"-S\s+([+~]*[a-z_][\w.]*=[^\s\"']+)", line)}
                shown |= set(re.findall(r"-S\s+'([+~]*[a-z_][\w.]*=[^']+)'", line))     # quoted: a value with spaces
    assert any(s.startswith("++train.mixed_precision=") for s in shown), sorted(shown)
    assert "train_overrides.combined={source_prior: shared}" in shown, sorted(shown)
    refused = []
    for override in sorted(shown):
        copy = tmp_path / "params.yaml"
        shutil.copy(REPO / "params.yaml", copy)
        try:
            apply_overrides(str(copy), [override])
        except Exception as exc:       # DVC raises its own error types for a bad override
            refused.append(f"{override}: {exc}")
    assert not refused, refused
