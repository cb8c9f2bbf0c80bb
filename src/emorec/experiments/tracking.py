"""MLflow set-up (embedded sqlite store by default, MLFLOW_TRACKING_URI overrides) and the
provenance every run carries: git commit, DVC stage, data fingerprint."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def tracking_uri(root: Path) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(root / 'mlflow.db').as_posix()}"


def check_reachable(uri: str, timeout: float = 10.0) -> None:
    """A tracking server that does not answer is reported within `timeout` seconds, not
    after MLflow's minutes of retries."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    from emorec.errors import EmorecError

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return   # it answered
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise EmorecError(f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) is unreachable ({reason}); "
                          "start it, correct the variable, or unset it to use ./mlflow.db") from None


def configure(root: Path, experiment: str) -> str:
    """Point MLflow at the store and make sure the experiment exists; return its id."""
    import mlflow

    uri = tracking_uri(root)
    check_reachable(uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.get_experiment_by_name(experiment)
    if exp is not None:
        return exp.experiment_id
    artifact_location = None
    if uri.startswith("sqlite:") and not os.environ.get("MLFLOW_TRACKING_URI"):
        artifact_location = (root / "mlruns").resolve().as_uri()
    try:
        return mlflow.create_experiment(experiment, artifact_location=artifact_location)
    except Exception:  # created concurrently by another process
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            raise
        return exp.experiment_id


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        commit = out.stdout.strip() if out.returncode == 0 else "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{commit}-dirty" if dirty and commit != "unknown" else commit
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def dvc_stage(default: str) -> str:
    """DVC (>= 3.49) exports the running stage's name as DVC_STAGE."""
    return os.environ.get("DVC_STAGE") or default


def hardware() -> str:
    import platform

    cpus = os.cpu_count()
    return f"{platform.machine()} CPU, {cpus} cores" + (
        ", GPU" if os.environ.get("CUDA_VISIBLE_DEVICES") not in (None, "", "-1") else "")


def log_keras_model(model, signature, input_example, name: str = "model"):
    """mlflow.keras.log_model with signature and input example.

    mlflow 3.17's keras flavor writes the input example before it creates the model
    folder and fails with FileNotFoundError; creating the folder first is the whole fix.
    """
    import mlflow
    from mlflow.keras import save as keras_save

    original = keras_save._save_example

    def save_example(mlflow_model, example, path, *args, **kwargs):
        os.makedirs(path, exist_ok=True)
        return original(mlflow_model, example, path, *args, **kwargs)

    keras_save._save_example = save_example
    try:
        return mlflow.keras.log_model(model, name=name, signature=signature, input_example=input_example)
    finally:
        keras_save._save_example = original


def load_logged_keras(uri: str):
    """A Keras model logged with log_keras_model, loaded through emorec.models.load_file
    (safe mode on except for the architectures that need it off)."""
    import mlflow

    from emorec.models import loading

    local = Path(mlflow.artifacts.download_artifacts(uri))
    files = sorted(local.rglob("*.keras"))
    if not files:
        raise FileNotFoundError(f"{uri}: no .keras file among the logged artifacts")
    return loading.load_file(files[0])
