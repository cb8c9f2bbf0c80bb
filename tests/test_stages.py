"""Stage scripts as DVC runs them: bad input -> one clear message, exit 2, no outputs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml
from conftest import REPO, write_image_zip

PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())


def project(tmp_path: Path, **fetch_overrides) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["fetch"]["fer2013"].update({"search": [], "kaggle_download": False, **fetch_overrides})
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp_path


def run_stage(root: Path, script: str, *args: str, env_extra: dict | None = None):
    import os

    env = {k: v for k, v in os.environ.items() if k != "EMOREC_FER2013"}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, str(REPO / "stages" / script), *args], cwd=root,
                          capture_output=True, text=True, env=env, timeout=300)


def test_missing_data(tmp_path):
    root = project(tmp_path)
    result = run_stage(root, "fetch.py", "fer2013")
    assert result.returncode == 2
    assert "no copy of fer2013 found" in result.stderr and "How to get FER2013" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "data").exists()


def test_corrupt_jpeg_leaves_previous_cache_untouched(tmp_path, records):
    source = write_image_zip(tmp_path / "src.zip", records)
    root = project(tmp_path / "proj", path=str(source))
    cache = root / "data" / "cache" / "fer2013.npz"
    assert run_stage(root, "fetch.py", "fer2013").returncode == 0
    good = cache.read_bytes()
    with zipfile.ZipFile(source, "a") as zf:
        zf.writestr("train/sad/Training_777.jpg", b"garbage")
    result = run_stage(root, "fetch.py", "fer2013")
    assert result.returncode == 2
    assert "Training_777.jpg" in result.stderr and "cannot decode" in result.stderr
    assert cache.read_bytes() == good
    assert [p.name for p in cache.parent.iterdir()] == ["fer2013.npz"]


def test_sha256_mismatch(tmp_path, records):
    source = write_image_zip(tmp_path / "src.zip", records)
    root = project(tmp_path / "proj", path=str(source), sha256="ab" * 32)
    result = run_stage(root, "fetch.py", "fer2013")
    assert result.returncode == 2 and "sha256 mismatch" in result.stderr
    assert not (root / "data" / "cache" / "fer2013.npz").exists()


def test_unknown_dataset_and_model_names(tmp_path):
    root = project(tmp_path)
    result = run_stage(root, "fetch.py", "ckplus")
    assert result.returncode == 2 and "unknown dataset 'ckplus'" in result.stderr
    result = run_stage(root, "train.py", "fer2013", "alexnet", "plain")
    assert result.returncode == 2 and "unknown model 'alexnet'" in result.stderr
    result = run_stage(root, "train.py", "fer2013", "cnn", "sometimes")
    assert result.returncode == 2 and "unknown balance mode" in result.stderr


def test_emorec_help():
    result = subprocess.run([sys.executable, "-m", "emorec.cli", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for command in ("fetch", "validate", "prepare", "train", "evaluate", "report"):
        assert command in result.stdout


@pytest.mark.parametrize("params_text,message", [
    ("seed: [", "invalid YAML"),
    ("- just a list", "expected a mapping"),
])
def test_broken_params_file(tmp_path, params_text, message):
    (tmp_path / "params.yaml").write_text(params_text)
    result = run_stage(tmp_path, "fetch.py", "fer2013")
    assert result.returncode == 2 and message in result.stderr
