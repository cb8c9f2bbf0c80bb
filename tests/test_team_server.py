"""`emorec team-server`: PostgreSQL + `mlflow server` with proxied artifacts, on loopback.
Workers only set MLFLOW_TRACKING_URI; runs and registry land in PostgreSQL, artifacts in
the server's folder, and a restart keeps them."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from emorec.errors import EmorecError
from emorec.experiments import team_server
from emorec.serving.process import free_port


def have_postgres() -> bool:
    try:
        team_server.postgres_bin("initdb")
        return True
    except EmorecError:
        return False


@pytest.fixture
def folder():
    if not have_postgres():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL must be installed in CI (.ci/run installs it)")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # not under pytest's tmp_path: as root, PostgreSQL runs as `postgres`, which must reach it
    path = Path(tempfile.mkdtemp(prefix="emorec-team-", dir="/tmp"))
    path.chmod(0o755)
    yield path / "server"
    subprocess.run(["rm", "-rf", str(path)], check=False)


def test_runs_registry_and_artifacts_go_through_the_team_server(folder, tmp_path):
    import mlflow
    from mlflow import MlflowClient

    server = team_server.TeamServer(folder, port=free_port(), pg_port=free_port())
    url = server.start()
    try:
        assert server.allowed_hosts.startswith("127.0.0.1:") and "localhost" in server.allowed_hosts
        mlflow.set_tracking_uri(url)
        experiment = mlflow.create_experiment("team")
        (tmp_path / "note.txt").write_text("hello")
        with mlflow.start_run(experiment_id=experiment, run_name="worker-1") as run:
            mlflow.log_param("lr", 0.01)
            mlflow.log_metric("val_accuracy", 0.5)
            mlflow.log_artifact(str(tmp_path / "note.txt"))
        client = MlflowClient()
        client.create_registered_model("emorec-team")
        version = client.create_model_version("emorec-team", f"runs:/{run.info.run_id}/note.txt", run.info.run_id)
        client.set_registered_model_alias("emorec-team", "champion", version.version)
        # the artifact went through the server into its folder; the client saw no path
        assert mlflow.get_experiment(experiment).artifact_location.startswith("mlflow-artifacts:")
        assert [p.read_text() for p in (folder / "artifacts").rglob("note.txt")] == ["hello"]
        # the run and the alias are rows in PostgreSQL
        env = {**os.environ, "PGPASSWORD": server.password_file.read_text().strip()}
        rows = server._pg("psql", "-h", "127.0.0.1", "-p", str(server.pg_port), "-U", "mlflow", "-d", "mlflow",
                          "-tAc", "SELECT r.name, a.alias FROM runs r, registered_model_aliases a "
                          f"WHERE r.run_uuid = '{run.info.run_id}'", env=env).stdout.split()
        assert rows == ["worker-1|champion"]
    finally:
        server.stop()
    assert not (folder / "postgres" / "postmaster.pid").exists()
    # a restart finds the same store
    again = team_server.TeamServer(folder, port=free_port(), pg_port=free_port())
    mlflow.set_tracking_uri(again.start())
    try:
        assert MlflowClient().get_model_version_by_alias("emorec-team", "champion").run_id == run.info.run_id
        assert mlflow.get_run(run.info.run_id).data.metrics["val_accuracy"] == 0.5
    finally:
        again.stop()


def test_missing_postgres_is_named(monkeypatch):
    monkeypatch.setattr(team_server.shutil, "which", lambda tool: None)
    monkeypatch.setattr(team_server.glob, "glob", lambda pattern: [])
    with pytest.raises(EmorecError, match="initdb not found: install PostgreSQL"):
        team_server.postgres_bin("initdb")
