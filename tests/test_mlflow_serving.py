"""MLflow's own serving of the registered model: `mlflow models serve -m
models:/emorec-fer2013@champion` answers a base64 photo with the faces in it (the detector
travels inside the pyfunc), and emorec's own loaders still take the `.keras` file out of
the same registered version with safe mode on."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO
from test_serving import real_photo, tiny_model

from emorec.config import load_params


def register_champion(tmp_path: Path) -> str:
    import mlflow

    from emorec.data.preprocess import InputSpec
    from emorec.experiments import registry
    from emorec.labels import BASIC_EMOTIONS
    from emorec.serving.service_model import log_service_model

    params = load_params(REPO / "params.yaml")
    detector = dict(params["detectors"]["yunet"])
    detector["weights"] = str((REPO / detector["weights"]).resolve())
    if not Path(detector["weights"]).exists():
        pytest.skip(f"real data not available: {detector['weights']} is absent")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment = mlflow.create_experiment("serving", artifact_location=(tmp_path / "artifacts").as_uri())
    model = tiny_model(tmp_path)
    with mlflow.start_run(experiment_id=experiment):
        info = log_service_model(model, InputSpec(48, 1, BASIC_EMOTIONS).to_dict(), "yunet", detector,
                                 infer=params["infer"])
    version = registry.register_version(info.model_uri, "emorec-fer2013", {"dataset": "fer2013"})
    registry.promote("emorec-fer2013", version, "test")
    return uri


def test_mlflow_models_serve_answers_a_real_photo(tmp_path):
    photo = real_photo()
    uri = register_champion(tmp_path)

    from emorec.inference.classifier import Classifier  # our loader: the .keras inside, safe mode on

    assert Classifier("models:/emorec-fer2013@champion").classes[3] == "happy"

    from emorec.serving.process import free_port, stop

    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    proc = subprocess.Popen([str(mlflow_cli), "models", "serve", "-m", "models:/emorec-fer2013@champion",
                             "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()[-3000:]
            try:
                urllib.request.urlopen(base + "/ping", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)

        def invoke(rows):
            body = json.dumps({"dataframe_split": {"columns": ["image"], "data": [[r] for r in rows]}}).encode()
            request = urllib.request.Request(base + "/invocations", data=body,
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=120) as r:
                return json.loads(r.read())["predictions"]

        text = base64.b64encode(photo).decode()
        first, second = invoke([text, "data:image/jpeg;base64," + text])
        assert first == second and (first["width"], first["height"]) == (640, 480)
        (face,) = first["faces"]
        assert face["label"] in face["probabilities"] and len(face["landmarks"]) == 5
        x1, y1, x2, y2 = face["box"]
        assert 200 < (x1 + x2) / 2 < 520 and 150 < (y1 + y2) / 2 < 420
        with pytest.raises(urllib.error.HTTPError) as err:
            invoke(["not base64!"])
        assert err.value.code == 400 and "not valid base64" in err.value.read().decode()
    finally:
        stop(proc)
