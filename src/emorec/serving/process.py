"""`emorec serve` as a child process on loopback: started, waited for, stopped. Used by the
tests, the load benchmark and the screenshot script, so they run the service as users do."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, grace: float = 30.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `grace` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def serving(model: str | Path, *extra: str, cwd: Path | None = None, timeout: float = 180.0, env=None):
    """Yield the base URL of `emorec serve --model MODEL` once /ready answers; stop it after.
    The child's output goes to a log file whose tail is shown if it never gets ready."""
    import tempfile

    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="emorec-serve-", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "emorec.cli", "serve", "--model", str(model),
                             "--port", str(port), *extra], cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"emorec serve did not get ready (exit {proc.poll()}):\n{log.read()[-3000:]}")
            try:
                urllib.request.urlopen(base + "/ready", timeout=2).close()
                break
            except OSError:
                time.sleep(0.3)
        yield base, proc
    finally:
        stop(proc)
        log.close()
        Path(log.name).unlink(missing_ok=True)
