"""One MLflow tracking server for a team: PostgreSQL as the backend store (runs, metrics,
the model registry) and artifacts proxied by the server (`--serve-artifacts`), so workers
need only `MLFLOW_TRACKING_URI=http://<host>:<port>`, no database or bucket credentials.

Everything lives under one folder: `postgres/` (the database cluster, created on first
start with a random password kept in `postgres.password`, mode 600), `artifacts/`, and the
logs. PostgreSQL listens on 127.0.0.1 only; the MLflow server on `--host` (127.0.0.1 by
default) with `--allowed-hosts` set to the names it answers on. PostgreSQL refuses to run
as root: as root, the cluster is owned by and run as the `postgres` user the Debian package
creates. The embedded sqlite store (./mlflow.db) stays the default for one person."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from emorec.errors import EmorecError


def postgres_bin(tool: str) -> str:
    """A PostgreSQL server tool: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(tool)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"),
                        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if not candidates:
        raise EmorecError(f"PostgreSQL's {tool} not found: install PostgreSQL (Debian: apt-get install postgresql)")
    return candidates[-1]


class TeamServer:
    """The folder, the ports and the commands; `start()` returns once both servers answer."""

    def __init__(self, folder: Path, host: str = "127.0.0.1", port: int = 5000, pg_port: int = 5433,
                 allowed_hosts: str | None = None, workers: int = 2):
        self.folder = Path(folder).resolve()
        self.host, self.port, self.pg_port, self.workers = host, port, pg_port, workers
        names = {host, "127.0.0.1", "localhost"} if host in ("127.0.0.1", "localhost") else {host}
        self.allowed_hosts = allowed_hosts or ",".join(sorted(f"{n}:{port}" for n in names) + sorted(names))
        self.cluster = self.folder / "postgres"
        self.password_file = self.folder / "postgres.password"
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.mlflow = None

    # -- PostgreSQL ------------------------------------------------------------------------
    def _pg(self, tool: str, *args: str, check: bool = True, **kwargs):
        return subprocess.run([*self.run_as, postgres_bin(tool), *args], check=check, capture_output=True,
                              text=True, **kwargs)

    def _initialise(self) -> None:
        if (self.cluster / "PG_VERSION").exists():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(secrets.token_urlsafe(24))
        self.password_file.chmod(0o600)
        self.cluster.mkdir(mode=0o700)
        pwfile = self.folder / ".initdb-password"
        shutil.copyfile(self.password_file, pwfile)
        if self.run_as:   # the cluster belongs to the unprivileged user that runs it
            shutil.chown(self.cluster, "postgres", "postgres")
            shutil.chown(pwfile, "postgres", "postgres")
            os.chmod(self.folder, 0o755)
        try:
            self._pg("initdb", "-D", str(self.cluster), "-U", "mlflow", "--auth=scram-sha-256",
                     f"--pwfile={pwfile}", "-E", "UTF8")
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(self.cluster, ignore_errors=True)
            raise EmorecError(f"initdb failed for {self.cluster}: {exc.stderr.strip()[-500:]}") from None
        finally:
            pwfile.unlink(missing_ok=True)

    def database_uri(self) -> str:
        password = self.password_file.read_text().strip()
        return f"postgresql+psycopg2://mlflow:{password}@127.0.0.1:{self.pg_port}/mlflow"

    def start_postgres(self) -> None:
        self._initialise()
        log = self.folder / "postgres.log"
        if self.run_as and not log.exists():
            log.touch()
            shutil.chown(log, "postgres", "postgres")
        started = self._pg("pg_ctl", "-D", str(self.cluster), "-l", str(log), "-w", "-t", "60", "-o",
                           f"-p {self.pg_port} -c listen_addresses=127.0.0.1 -k {self.cluster}", "start",
                           check=False)
        if started.returncode != 0:
            raise EmorecError(f"PostgreSQL did not start on 127.0.0.1:{self.pg_port} "
                              f"({(started.stderr or started.stdout).strip()[-300:]}); see {log}")
        env = {**os.environ, "PGPASSWORD": self.password_file.read_text().strip()}
        exists = self._pg("psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "mlflow", "-d", "postgres",
                          "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'mlflow'", env=env)
        if exists.stdout.strip() != "1":
            self._pg("createdb", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", "mlflow", "mlflow", env=env)

    def stop_postgres(self) -> None:
        if (self.cluster / "postmaster.pid").exists():
            self._pg("pg_ctl", "-D", str(self.cluster), "-m", "fast", "-w", "stop", check=False)

    # -- MLflow ----------------------------------------------------------------------------
    def mlflow_command(self) -> list[str]:
        return [str(Path(sys.executable).with_name("mlflow")), "server",
                "--backend-store-uri", self.database_uri(),
                "--artifacts-destination", str(self.folder / "artifacts"), "--serve-artifacts",
                "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
                "--allowed-hosts", self.allowed_hosts]

    def start(self, timeout: float = 180.0) -> str:
        import time
        import urllib.request

        self.start_postgres()
        (self.folder / "artifacts").mkdir(exist_ok=True)
        log = open(self.folder / "mlflow-server.log", "a")
        self.mlflow = subprocess.Popen(self.mlflow_command(), stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        url = f"http://{self.host}:{self.port}"
        deadline = time.monotonic() + timeout
        while True:
            if self.mlflow.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EmorecError(f"the MLflow server did not start on {url}; see {self.folder / 'mlflow-server.log'}")
            try:
                urllib.request.urlopen(url + "/health", timeout=2).close()
                return url
            except OSError:
                time.sleep(0.5)

    def stop(self) -> None:
        if self.mlflow is not None and self.mlflow.poll() is None:
            os.killpg(self.mlflow.pid, signal.SIGTERM)
            try:
                self.mlflow.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.mlflow.pid, signal.SIGKILL)
        self.stop_postgres()


def serve_forever(server: TeamServer) -> None:
    """`emorec team-server`: start both, print what workers set, stop both on Ctrl-C / SIGTERM."""
    import time

    url = server.start()
    print(f"MLflow server on {url} (PostgreSQL 127.0.0.1:{server.pg_port}, artifacts under "
          f"{server.folder / 'artifacts'}, allowed hosts {server.allowed_hosts})")
    print(f"workers: export MLFLOW_TRACKING_URI={url}")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        while server.mlflow.poll() is None:
            time.sleep(1)
        print(f"the MLflow server exited ({server.mlflow.returncode}); see {server.folder / 'mlflow-server.log'}")
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
