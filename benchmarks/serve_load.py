"""Load and soak of `emorec serve` on 127.0.0.1, beside in-process prediction in the same run.

    python benchmarks/serve_load.py --model models/fer2013/cnn-plain/model.keras
    python benchmarks/serve_load.py --model M --soak-seconds 30 --seconds 5   # a quick look

1. Served: the 640x480 one-face frame as JPEG, POSTed to /v1/predict by 1, 4 and 16 concurrent clients
   (threads with keep-alive connections, in this process) for `--seconds` each:
   throughput, p50/p99 latency, failures (anything but 200).
2. Soak: 4 clients for `--soak-seconds`; the server's RSS every 10 s.
3. In-process, once the server has stopped: `EmotionRecognizer.predict` on the decoded
   frame, one thread, for `--seconds`: images/s and latency, the ratio's denominator.
Clients and server share this machine's cores, as they would on one box. Results go to
reports/benchmarks/serve_load.json; `python benchmarks/summarize.py` adds them to
reports/benchmarks.md."""

from __future__ import annotations

import argparse
import http.client
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, save  # noqa: E402

VIDEO = ROOT.parent / "shared" / "media" / "videos" / "webcam_640x480_one_face.mp4"


def frame_and_jpeg(frame_index: int = 100):
    import cv2

    cap = cv2.VideoCapture(str(VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
    ok, frame = cap.read()
    if not ok:
        raise SystemExit(f"cannot read frame {frame_index} of {VIDEO}")
    return frame, cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


def summary(latencies: list[float], ok: int, failed: int, seconds: float) -> dict:
    ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return {"requests": ok + failed, "ok": ok, "failed": failed, "seconds": round(seconds, 2),
            "per_second": round(ok / seconds, 2), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2)}


def in_process(model: str, frame, seconds: float) -> dict:
    from emorec.config import load_params
    from emorec.recognizer import EmotionRecognizer

    params = load_params(ROOT / "params.yaml")
    recognizer = EmotionRecognizer.from_params(params, ROOT, model=model)
    for _ in range(5):
        recognizer.predict(frame)
    latencies, end = [], time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        t = time.perf_counter()
        faces = recognizer.predict(frame)
        latencies.append(time.perf_counter() - t)
        assert len(faces) == 1
    return summary(latencies, len(latencies), 0, time.perf_counter() - start)


def load(port: int, body: bytes, clients: int, seconds: float) -> dict:
    latencies, counts, lock = [], {"ok": 0, "failed": 0}, threading.Lock()
    barrier = threading.Barrier(clients + 1)
    end_box = {}

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, ok, failed = [], 0, 0
        barrier.wait()
        while time.perf_counter() < end_box["end"]:
            t = time.perf_counter()
            try:
                conn.request("POST", "/v1/predict", body=body, headers={"Content-Type": "image/jpeg"})
                response = conn.getresponse()
                response.read()
                good = response.status == 200
            except (OSError, http.client.HTTPException):
                good = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            mine.append(time.perf_counter() - t)
            ok, failed = ok + good, failed + (not good)
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["failed"] += failed

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    end_box["end"] = start + seconds
    barrier.wait()
    for t in threads:
        t.join()
    return {"clients": clients, **summary(latencies, counts["ok"], counts["failed"], time.perf_counter() - start)}


def main() -> None:
    import psutil

    from emorec.serving.process import serving

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a .keras file (run.json or preprocessing.json beside it)")
    ap.add_argument("--weights-note", default="", help="what the model's weights are, for the report")
    ap.add_argument("--seconds", type=float, default=20.0, help="per concurrency level")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--soak-seconds", type=float, default=300.0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    frame, body = frame_and_jpeg()
    levels, soak = [], {}
    with serving(args.model, cwd=ROOT) as (base, proc):
        port = int(base.rsplit(":", 1)[1])
        load(port, body, 1, 3.0)                      # warm-up
        for clients in args.clients:
            row = load(port, body, clients, args.seconds)
            levels.append(row)
            print(f"  {clients:2d} client(s): {row['per_second']} req/s, "
                  f"p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, failed {row['failed']}", flush=True)
        server = psutil.Process(proc.pid)
        samples, results = [], []
        runner = threading.Thread(target=lambda: results.append(load(port, body, 4, args.soak_seconds)))
        started = time.perf_counter()
        runner.start()
        while runner.is_alive():
            samples.append((round(time.perf_counter() - started, 1), round(server.memory_info().rss / 2**20, 1)))
            runner.join(timeout=10)
        rss = [mb for _, mb in samples]
        soak = {"clients": 4, **results[0], "rss_mb": samples, "rss_first_mb": rss[0], "rss_last_mb": rss[-1],
                "rss_max_mb": max(rss), "rss_growth_mb": round(rss[-1] - rss[min(1, len(rss) - 1)], 1)}
        print(f"  soak {args.soak_seconds:g} s, 4 clients: {soak['per_second']} req/s, failed {soak['failed']}, "
              f"RSS {soak['rss_first_mb']} -> {soak['rss_last_mb']} MB (max {soak['rss_max_mb']})", flush=True)
    # after the server has stopped, and in this process only now: TensorFlow's and OpenCV's
    # thread pools in the client process would otherwise compete with the server
    print(f"in-process EmotionRecognizer.predict for {args.seconds:g} s ...", flush=True)
    local = in_process(args.model, frame, args.seconds)
    print(f"  {local['per_second']} img/s, p50 {local['p50_ms']} ms, p99 {local['p99_ms']} ms", flush=True)
    for row in levels:
        row["x_in_process"] = round(row["per_second"] / local["per_second"], 3)
    save("serve_load", {"model": Path(args.model).name, "weights_note": args.weights_note,
                        "image": f"{VIDEO.name} frame 100, 640x480 JPEG q90 ({len(body)} bytes), one face",
                        "detector": "yunet (params.yaml infer.detector)", "in_process": local,
                        "served": levels, "soak": soak}, args.out)


if __name__ == "__main__":
    main()
