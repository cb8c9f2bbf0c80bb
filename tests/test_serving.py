"""`emorec serve`: the HTTP service in-process (FastAPI's TestClient): every input form,
the operational endpoints, bad input answered with 4xx JSON, and a moved alias."""

from __future__ import annotations

import base64
import io
import zlib

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from emorec.inference.detectors import Face
from emorec.recognizer import EmotionRecognizer
from emorec.serving.app import ModelSource, create_app


class CentreFace:
    def detect(self, frame):
        h, w = frame.shape[:2]
        return [Face(np.array([w / 4, h / 4, 3 * w / 4, 3 * h / 4], float), 0.9, np.zeros((5, 2)))]


class Fixed:
    def __init__(self, p_happy: float):
        self.p = p_happy
    classes = ("sad", "happy")

    def predict_faces(self, crops):
        return np.tile([1 - self.p, self.p], (len(crops), 1))


def png(w=64, h=48) -> bytes:
    ok, buf = cv2.imencode(".png", np.full((h, w, 3), 128, np.uint8))
    return buf.tobytes()


@pytest.fixture
def client():
    source = ModelSource("face.keras", lambda uri: EmotionRecognizer.from_parts(CentreFace(), Fixed(0.8)))
    return TestClient(create_app(source, max_body_bytes=1 << 20, max_pixels=4_000_000))


@pytest.mark.parametrize("send", ["raw", "multipart", "json", "data_url"])
def test_every_input_form_gets_the_faces(client, send):
    data = png()
    if send == "raw":
        r = client.post("/v1/predict", content=data, headers={"content-type": "image/png"})
    elif send == "multipart":
        r = client.post("/v1/predict", files={"image": ("x.png", data, "image/png")})
    elif send == "json":
        r = client.post("/v1/predict", json={"image": base64.b64encode(data).decode()})
    else:
        r = client.post("/v1/predict", json={"image": "data:image/png;base64," + base64.b64encode(data).decode()})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"width": 64, "height": 48} and body["version"] == "face.keras"
    (face,) = body["faces"]
    assert face["label"] == "happy" and face["score"] == pytest.approx(0.8)
    assert face["box"] == [16.0, 12.0, 48.0, 36.0] and len(face["landmarks"]) == 5
    assert set(body["timing_ms"]) == {"decode", "queue", "detect", "classify"}


def test_predict_faces_takes_several_crops(client):
    r = client.post("/v1/predict-faces", json={"images": [base64.b64encode(png()).decode()] * 3})
    assert r.status_code == 200 and len(r.json()["faces"]) == 3 and r.json()["faces"][0]["box"] is None
    r = client.post("/v1/predict-faces", files=[("images", ("a.png", png(), "image/png"))] * 2)
    assert r.status_code == 200 and len(r.json()["faces"]) == 2


def bomb_png(side: int) -> bytes:
    """A valid PNG header claiming side x side pixels, with a tiny compressed payload."""
    import struct

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = zlib.compress(b"\0" * (side + 1) * 16, 9)   # far too little data: never decoded anyway
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


@pytest.mark.parametrize("kwargs, status, message", [
    ({"content": b"hello", "headers": {"content-type": "image/jpeg"}}, 415, "not an image"),
    ({"content": b"", "headers": {"content-type": "image/png"}}, 400, "empty body"),
    ({"content": b"\0" * ((1 << 20) + 1), "headers": {"content-type": "image/png"}}, 413, "over the limit"),
    ({"content": bomb_png(10_000), "headers": {"content-type": "image/png"}}, 413, "MP, over the limit"),
    ({"content": png(), "headers": {"content-type": "text/plain"}}, 415, "content type 'text/plain'"),
    ({"json": {"image": "@@not base64@@"}}, 400, "not valid base64"),
    ({"json": {"path": "/etc/passwd"}}, 422, "must be a base64 string"),
    ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
])
def test_bad_input_gets_a_4xx_json_error_and_the_next_request_answers(client, kwargs, status, message):
    r = client.post("/v1/predict", **kwargs)
    assert r.status_code == status and message in r.json()["error"], r.text
    assert client.post("/v1/predict", content=png(), headers={"content-type": "image/png"}).status_code == 200


def test_health_ready_metrics_and_openapi(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json()["ready"] is True
    client.post("/v1/predict", content=png(), headers={"content-type": "image/png"})
    client.post("/v1/predict", content=b"x", headers={"content-type": "image/png"})
    text = client.get("/metrics").text
    assert 'emorec_requests_total{endpoint="predict",status="200"} 1' in text
    assert 'emorec_requests_total{endpoint="predict",status="415"} 1' in text
    assert 'emorec_request_seconds_count{endpoint="predict"} 2' in text and "emorec_faces_total 1" in text
    assert 'emorec_model_info{model="face.keras",version="face.keras"} 1' in text
    assert "/v1/predict" in client.get("/openapi.json").json()["paths"]


def test_a_moved_alias_is_served_without_a_restart(monkeypatch):
    versions = iter(["3", "3", "4"])
    made = []

    def make(uri):
        made.append(uri)
        return EmotionRecognizer.from_parts(CentreFace(), Fixed(0.9 if uri.endswith("/4") else 0.6))

    source = ModelSource("models:/emorec-fer2013@champion", make, check_seconds=0)
    monkeypatch.setattr(source, "_version", lambda: next(versions))
    client = TestClient(create_app(source))
    post = lambda: client.post("/v1/predict", content=png(), headers={"content-type": "image/png"}).json()  # noqa: E731
    first, second, third = post(), post(), post()
    assert (first["version"], second["version"], third["version"]) == ("3", "3", "4")
    assert third["faces"][0]["score"] == pytest.approx(0.9) and first["faces"][0]["score"] == pytest.approx(0.6)
    assert made == ["models:/emorec-fer2013/3", "models:/emorec-fer2013/4"]   # loaded once per version


def test_not_ready_until_a_model_loads():
    def fail(uri):
        raise FileNotFoundError("no such model yet")

    client = TestClient(create_app(ModelSource("missing.keras", fail)))
    r = client.get("/ready")
    assert r.status_code == 503 and "no such model" in r.json()["error"]
    assert client.get("/health").status_code == 200


def test_a_path_is_never_read(client, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(png())
    r = client.post("/v1/predict", json={"image": str(secret)})
    assert r.status_code == 400   # a path is not base64 of an image: no file is opened


def test_jpeg_of_a_real_size_round_trips(client):
    ok, buf = cv2.imencode(".jpg", np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8))
    r = client.post("/v1/predict", files={"image": ("a.jpg", io.BytesIO(buf.tobytes()), "image/jpeg")})
    assert r.status_code == 200 and r.json()["image"] == {"width": 640, "height": 480}


def real_photo() -> bytes:
    from conftest import SHARED

    video = SHARED / "media" / "videos" / "webcam_640x480_one_face.mp4"
    if not video.exists():
        pytest.skip(f"real data not available: {video} is absent")
    cap = cv2.VideoCapture(str(video))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, frame = cap.read()
    return cv2.imencode(".jpg", frame)[1].tobytes()


def tiny_model(folder):
    import keras

    from emorec import files, models
    from emorec.data.preprocess import InputSpec
    from emorec.labels import BASIC_EMOTIONS

    keras.utils.set_random_seed(0)
    models.build("cnn", (48, 48, 1), 7, filters=(8,), dense_units=8).save(folder / "model.keras")
    files.write_json(folder / "run.json", {"input_spec": InputSpec(48, 1, BASIC_EMOTIONS).to_dict()})
    return folder / "model.keras"


def post(base, data, kind="image/jpeg", timeout=60):
    """(status, JSON body) of a POST; 4xx answers are returned, not raised."""
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(base + "/v1/predict", data=data, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_emorec_serve_on_loopback_survives_bad_clients(tmp_path):
    """The command as users start it (real uvicorn on 127.0.0.1, real face): a real photo, a
    client that stalls mid-upload (408 for it, answers for others meanwhile), a genuine
    10,000 x 10,000 JPEG (413 before decoding), and a burst of 200 requests, good and bad."""
    import socket
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from conftest import REPO

    from emorec.labels import BASIC_EMOTIONS
    from emorec.serving.process import serving

    photo = real_photo()
    huge = cv2.imencode(".jpg", np.zeros((10_000, 10_000, 3), np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 50])[1].tobytes()
    with serving(tiny_model(tmp_path), "--read-timeout", "3", "--max-body-mb", "8", cwd=REPO) as (base, proc):
        status, body = post(base, photo)
        assert status == 200 and len(body["faces"]) == 1 and body["faces"][0]["label"] in BASIC_EMOTIONS
        assert body["version"] == "model.keras" and body["model"] == "model.keras"   # no server path told

        host, port = base[len("http://"):].split(":")
        stalled = socket.create_connection((host, int(port)))
        stalled.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                        b"Content-Length: 100000\r\n\r\n" + photo[:1000])
        answer_while_stalled = post(base, photo)
        stalled.settimeout(30)
        reply = b""
        while b"\r\n\r\n" not in reply or len(reply.split(b"\r\n\r\n", 1)[1]) < _content_length(reply):
            chunk = stalled.recv(4096)      # headers and body may come in separate packets
            if not chunk:
                break
            reply += chunk
        reply = reply.decode(errors="replace")
        stalled.close()
        assert answer_while_stalled[0] == 200
        assert reply.startswith("HTTP/1.1 408") and "stalled" in reply, reply[:300]

        status, body = post(base, huge)
        assert status == 413 and "over the limit" in body["error"], body

        lock, statuses = threading.Lock(), []

        def one(i):
            data, kind = [(photo, "image/jpeg"), (b"junk", "image/jpeg"), (b"", "image/png"),
                          (photo, "text/plain")][i % 4]
            result = post(base, data, kind, timeout=120)[0]
            with lock:
                statuses.append(result)

        with ThreadPoolExecutor(32) as pool:
            list(pool.map(one, range(200)))
        assert len(statuses) == 200
        assert sorted(set(statuses)) == [200, 400, 415] and statuses.count(200) == 50, sorted(set(statuses))
        assert post(base, photo)[0] == 200 and proc.poll() is None


def test_scores_are_scaled_by_the_temperature_the_model_carries(tmp_path):
    """A model whose preprocessing.json carries a softmax temperature answers with scaled
    probabilities (T > 1 softens them, the label stays); a bad temperature names the file."""
    from emorec.errors import EmorecError
    from emorec.inference.classifier import Classifier, calibrate

    p = np.array([[0.7, 0.2, 0.1]], np.float32)
    soft = calibrate(p, 2.0)
    assert soft.sum() == pytest.approx(1.0) and soft.argmax() == 0 and soft[0, 0] < 0.7
    assert np.allclose(calibrate(p, 1.0), p)
    model = tiny_model(tmp_path)
    crop = np.random.default_rng(0).integers(0, 255, (60, 60, 3), np.uint8)
    plain = Classifier(str(model)).predict_faces([crop])
    from emorec import files

    spec = files.read_json(tmp_path / "run.json")["input_spec"]
    files.write_json(tmp_path / "preprocessing.json", {**spec, "temperature": 3.0})
    warm = Classifier(str(model))
    assert warm.temperature == 3.0
    assert np.allclose(warm.predict_faces([crop]), calibrate(plain, 3.0), atol=1e-5)
    files.write_json(tmp_path / "preprocessing.json", {**spec, "temperature": "hot"})
    with pytest.raises(EmorecError, match="preprocessing.json: temperature must be a number"):
        Classifier(str(model))


def test_tta_averages_the_temperature_scaled_views_in_one_batch(tmp_path):
    """`tta="flip"` answers the mean of the face and its mirror, each scaled by the model's
    temperature; "ten" adds four 2-px shifts of each; anything else is refused by name."""
    from emorec import files
    from emorec.errors import EmorecError
    from emorec.inference.classifier import Classifier

    model = tiny_model(tmp_path)
    spec = files.read_json(tmp_path / "run.json")["input_spec"]
    files.write_json(tmp_path / "preprocessing.json", {**spec, "temperature": 2.0})
    rng = np.random.default_rng(1)
    crops = [rng.integers(0, 255, (48, 48, 3), np.uint8), rng.integers(0, 255, (48, 48, 3), np.uint8)]
    single, flip = Classifier(str(model)), Classifier(str(model), tta="flip")
    seen = []
    inner = flip._predict
    flip._predict = lambda x: (seen.append(len(x)), inner(x))[1]
    mirrored = single.predict_faces([c[:, ::-1] for c in crops])
    expected = (single.predict_faces(crops) + mirrored) / 2
    got = flip.predict_faces(crops)
    assert seen == [4]   # both views of both faces in one batch
    assert np.allclose(got, expected, atol=1e-5) and np.allclose(got.sum(1), 1, atol=1e-5)
    raw = Classifier(str(model))
    raw.temperature = 1.0
    assert not np.allclose(got, (raw.predict_faces(crops) + raw.predict_faces([c[:, ::-1] for c in crops])) / 2)
    ten = Classifier(str(model), tta="ten")
    seen.clear()
    inner_ten = ten._predict
    ten._predict = lambda x: (seen.append(len(x)), inner_ten(x))[1]
    assert ten.predict_faces(crops).shape == (2, 7) and seen == [20]
    assert ten.predict_faces([]).shape == (0, 7)
    with pytest.raises(EmorecError, match="tta must be null, 'flip' or 'ten', got 'twelve'"):
        Classifier(str(model), tta="twelve")


def _content_length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0
