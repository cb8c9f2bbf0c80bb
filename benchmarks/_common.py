"""What every benchmark records beside its figures: the machine, the date, the versions."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "reports" / "benchmarks"
PACKAGES = ("tensorflow", "keras", "onnxruntime", "opencv-contrib-python-headless", "dvc", "mlflow", "fer")


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal"))
        memory_gb = round(kb / 1024 ** 2, 1)
    except (OSError, StopIteration):
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gb": memory_gb, "os": platform.platform(terse=True),
            "python": platform.python_version(), "packages": versions, "gpu": "none used"}


def save(name: str, result: dict, path: Path | None = None) -> Path:
    """Write `result` with the machine facts to reports/benchmarks/<name>.json (or `path`)."""
    path = path or RESULTS / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"machine": machine(), **result}, indent=1))
    tmp.replace(path)
    return path
