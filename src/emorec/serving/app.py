"""The HTTP service: faces and emotions for an image posted by a client.

    POST /v1/predict        one image: multipart upload (field `image`), a raw body
                            (image/jpeg, image/png, image/webp) or JSON {"image": base64}
    POST /v1/predict-faces  faces already cut out: multipart (`images`, repeated) or
                            JSON {"images": [base64, ...]}
    GET  /health /ready /metrics (Prometheus text), /docs (OpenAPI)
    GET  /            the live page: webcam frames or a dropped photo, boxes, labels, bars
    GET  /v1/info     the model, its version and class names (the page reads it)

Clients send bytes, never paths. Bodies over the size limit get 413 before they are
decoded; an image whose header claims more pixels than the limit gets 413 before its
pixels are decompressed; anything that is not an image gets 4xx with a JSON `error`.
The model comes from a registry alias or a file (`ModelSource`); when the alias moves, the
next request is answered by the new version, and requests in flight finish on the one
they started with. Inference runs on a worker thread, one image at a time (the detector and
the classifier are not thread-safe), so uploads, /health and /metrics never wait on it; an
upload that stalls longer than `read_timeout` between chunks gets 408."""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import threading
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
from fastapi import Request  # at module level: FastAPI resolves the string annotations here

from emorec.errors import EmorecError

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
PAGE = Path(__file__).with_name("static") / "index.html"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


class ModelSource:
    """The recognizer that answers, and which model version it is.

    `make(model_uri) -> EmotionRecognizer`; for `models:/<name>@<alias>` the alias is looked
    up at most every `check_seconds` and a moved alias loads the new version before it
    replaces the old one (one reference swap, so a request keeps the recognizer it got)."""

    def __init__(self, model: str, make, check_seconds: float = 10.0):
        self.uri, self.make, self.check_seconds = model, make, check_seconds
        # what clients are told: a registry URI as is, a file by its name only (no server paths)
        self.model = model if model.startswith(("models:/", "runs:/")) else Path(model).name
        self.lock = threading.Lock()
        self.current = None          # (recognizer, version)
        self.checked = 0.0

    def _version(self) -> str:
        if not self.uri.startswith("models:/") or "@" not in self.uri:
            return self.model
        from mlflow import MlflowClient

        name, alias = self.uri[len("models:/"):].split("@", 1)
        return str(MlflowClient().get_model_version_by_alias(name, alias).version)

    def get(self):
        now = time.monotonic()
        if self.current is not None and now - self.checked < self.check_seconds:
            return self.current
        with self.lock:
            if self.current is not None and time.monotonic() - self.checked < self.check_seconds:
                return self.current
            version = self._version()
            if self.current is None or self.current[1] != version:
                uri = (self.uri.split("@")[0] + f"/{version}"
                       if self.uri.startswith("models:/") and "@" in self.uri else self.uri)
                self.current = (self.make(uri), version)
            self.checked = time.monotonic()
            return self.current


class Metrics:
    """Prometheus text exposition, by hand (no extra dependency)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = defaultdict(int)            # (endpoint, status) -> count
        self.buckets = defaultdict(lambda: [0] * (len(LATENCY_BUCKETS) + 1))
        self.sums = defaultdict(float)
        self.faces = 0

    def observe(self, endpoint: str, status: int, seconds: float, faces: int = 0) -> None:
        with self.lock:
            self.requests[(endpoint, status)] += 1
            counts = self.buckets[endpoint]
            for i, edge in enumerate(LATENCY_BUCKETS):
                if seconds <= edge:
                    counts[i] += 1
            counts[-1] += 1
            self.sums[endpoint] += seconds
            self.faces += faces

    def text(self, model: str, version: str | None) -> str:
        lines = ["# HELP emorec_requests_total Requests by endpoint and HTTP status.",
                 "# TYPE emorec_requests_total counter"]
        with self.lock:
            for (endpoint, status), n in sorted(self.requests.items()):
                lines.append(f'emorec_requests_total{{endpoint="{endpoint}",status="{status}"}} {n}')
            lines += ["# HELP emorec_request_seconds Request latency.", "# TYPE emorec_request_seconds histogram"]
            for endpoint, counts in sorted(self.buckets.items()):
                for edge, n in zip(LATENCY_BUCKETS, counts):
                    lines.append(f'emorec_request_seconds_bucket{{endpoint="{endpoint}",le="{edge}"}} {n}')
                lines.append(f'emorec_request_seconds_bucket{{endpoint="{endpoint}",le="+Inf"}} {counts[-1]}')
                lines.append(f'emorec_request_seconds_sum{{endpoint="{endpoint}"}} {self.sums[endpoint]:.6f}')
                lines.append(f'emorec_request_seconds_count{{endpoint="{endpoint}"}} {counts[-1]}')
            lines += ["# HELP emorec_faces_total Faces classified.", "# TYPE emorec_faces_total counter",
                      f"emorec_faces_total {self.faces}"]
        lines += ["# HELP emorec_model_info The model that answers.", "# TYPE emorec_model_info gauge",
                  f'emorec_model_info{{model="{model}",version="{version or ""}"}} 1']
        return "\n".join(lines) + "\n"


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes -> BGR image; the header's size is checked before any pixel is decompressed."""
    if not data:
        raise BadRequest(400, "empty body: send an image")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Image.DecompressionBombError:
        raise BadRequest(413, "image header claims too many pixels") from None
    except Exception:
        raise BadRequest(415, "not an image (JPEG, PNG or WebP expected)") from None
    if width * height > max_pixels:
        raise BadRequest(413, f"image is {width}x{height} = {width * height / 1e6:.1f} MP, over the "
                              f"limit of {max_pixels / 1e6:.1f} MP")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadRequest(415, "the image could not be decoded (damaged or unsupported)")
    return image


def temperature_of(recognizer) -> float | None:
    """The softmax temperature the scores were scaled with (1.0: the model carries none)."""
    return getattr(getattr(recognizer, "classifier", None), "temperature", None)


def b64(text, field: str) -> bytes:
    if not isinstance(text, str):
        raise BadRequest(422, f"JSON field {field!r} must be a base64 string")
    if text.startswith("data:") and "," in text:        # data URLs from browsers
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(400, f"JSON field {field!r} is not valid base64") from None


def create_app(source: ModelSource, max_body_bytes: int = 10 << 20, max_pixels: int = 40_000_000,
               read_timeout: float = 15.0):
    """The FastAPI application around a ModelSource."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
    from starlette.concurrency import run_in_threadpool

    app = FastAPI(title="emorec", version="1",
                  description="Facial emotion recognition: faces, boxes, landmarks and per-class "
                              "probabilities for an image. Bytes only; no file paths.")
    metrics = Metrics()
    inference = threading.Lock()      # one image at a time through detector and classifier

    def recognize(image: np.ndarray):
        with inference:
            recognizer, version = source.get()
            t1 = time.perf_counter()
            detected = recognizer.detect(image)
            t2 = time.perf_counter()
            crops, kept = recognizer.crops(image, detected)
            probs = recognizer.classify(crops)
            faces = [recognizer.prediction(p, f).to_dict() for p, f in zip(probs, kept)]
            return faces, version, t1, t2, time.perf_counter(), temperature_of(recognizer)

    def classify_crops(crops: list[np.ndarray]):
        with inference:
            recognizer, version = source.get()
            return [f.to_dict() for f in recognizer.predict_faces(crops)], version

    async def body_of(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body_bytes:
            raise BadRequest(413, f"body of {int(declared)} bytes is over the limit of {max_body_bytes}")
        chunks, size = [], 0
        stream = request.stream().__aiter__()
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), read_timeout)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise BadRequest(408, f"the upload stalled: no data for {read_timeout:g} s") from None
            size += len(chunk)
            if size > max_body_bytes:
                raise BadRequest(413, f"body is over the limit of {max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def images_in(request: Request, many: bool) -> list[bytes]:
        kind = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        body = await body_of(request)
        if kind in IMAGE_TYPES and not many:
            return [body]
        if kind == "application/json":
            import json

            try:
                doc = json.loads(body or b"null")
            except ValueError:
                raise BadRequest(400, "body is not valid JSON") from None
            if not isinstance(doc, dict):
                raise BadRequest(422, "JSON body must be an object")
            if many:
                items = doc.get("images")
                if not isinstance(items, list) or not items:
                    raise BadRequest(422, 'JSON body needs "images": [base64, ...]')
                return [b64(x, "images") for x in items]
            return [b64(doc.get("image"), "image")]
        if kind == "multipart/form-data":
            from starlette.datastructures import UploadFile
            from starlette.requests import Request as Plain

            async def replay():
                return {"type": "http.request", "body": body, "more_body": False}

            form = await Plain(request.scope, replay).form()
            uploads = [v for k, v in form.multi_items() if k in ("images" if many else "image",)
                       and isinstance(v, UploadFile)]
            if not uploads:
                raise BadRequest(422, f"multipart body needs a file field {'images' if many else 'image'!r}")
            return [await u.read() for u in uploads]
        raise BadRequest(415, f"content type {kind or '(none)'!r}: send {', '.join(IMAGE_TYPES)}, "
                              "application/json or multipart/form-data")

    def answer(endpoint: str, started: float, payload: dict, status: int = 200, faces: int = 0):
        metrics.observe(endpoint, status, time.perf_counter() - started, faces)
        return JSONResponse(payload, status_code=status)

    @app.post("/v1/predict")
    async def predict(request: Request):
        started = time.perf_counter()
        try:
            data = (await images_in(request, many=False))[0]
            t0 = time.perf_counter()
            image = await run_in_threadpool(decode_image, data, max_pixels)   # off the event loop
            decoded = time.perf_counter()
            faces, version, t1, t2, t3, temperature = await run_in_threadpool(recognize, image)
        except BadRequest as exc:
            return answer("predict", started, {"error": exc.message}, exc.status)
        timing = {"decode": (decoded - t0) * 1000, "queue": (t1 - decoded) * 1000,
                  "detect": (t2 - t1) * 1000, "classify": (t3 - t2) * 1000}
        return answer("predict", started, {
            "faces": faces, "model": source.model, "version": version, "temperature": temperature,
            "image": {"width": image.shape[1], "height": image.shape[0]},
            "timing_ms": {k: round(v, 2) for k, v in timing.items()}}, faces=len(faces))

    @app.post("/v1/predict-faces")
    async def predict_faces(request: Request):
        started = time.perf_counter()
        try:
            crops = [cv2.cvtColor(decode_image(d, max_pixels), cv2.COLOR_BGR2RGB)
                     for d in await images_in(request, many=True)]
            faces, version = await run_in_threadpool(classify_crops, crops)
        except BadRequest as exc:
            return answer("predict_faces", started, {"error": exc.message}, exc.status)
        return answer("predict_faces", started, {"faces": faces, "model": source.model, "version": version},
                      faces=len(faces))

    @app.get("/", include_in_schema=False)
    def page():
        return HTMLResponse(PAGE.read_text(encoding="utf-8"))

    @app.get("/v1/info")
    def info():
        recognizer, version = source.get()
        return {"model": source.model, "version": version, "classes": list(recognizer.classes),
                "detector": getattr(recognizer, "detector_name", None)}

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        try:
            _, version = source.get()
        except (EmorecError, Exception) as exc:  # the registry or the file is not there yet
            return JSONResponse({"ready": False, "error": str(exc)[:300]}, status_code=503)
        return {"ready": True, "model": source.model, "version": version}

    @app.get("/metrics")
    def prometheus():
        version = source.current[1] if source.current else None
        return PlainTextResponse(metrics.text(source.model, version), media_type="text/plain; version=0.0.4")

    return app
