"""End-to-end frames per second of the real-time loop, with per-stage latency, per
detector x classifier x loop setting: what each optimization buys, and where the floor is.

Runs the real loop (decode, detect, preprocess, classify in one batch per frame, draw,
encode the annotated video) once per row, each row in its own fresh process. Settings
are `infer` keys from params.yaml given as key=value; "-" keeps params.yaml as it is.

    python benchmarks/realtime_fps.py                      # params.yaml's detector and model
    python benchmarks/realtime_fps.py --detectors yunet haar --models M1 M2 \\
        --settings - threaded_io=false classifier_threads=0 detect_every=2   # rows to realtime_fps.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # for the retina-face backend

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("decode", "detect", "preprocess", "classify", "draw", "encode")


def _setting(text: str) -> dict:
    if text == "-":
        return {}
    key, _, value = text.partition("=")
    import yaml

    return {key: yaml.safe_load(value)}


def row(video: str, model: str, detector: str, setting: str) -> dict:
    """One run of the infer stage's own code path with one `infer` setting changed."""
    from emorec.stages import infer

    with tempfile.TemporaryDirectory() as out:
        s = infer.run(video, model, detector, out, root=ROOT, overrides={**_setting(setting), "show": False},
                                 progress=False)
    return {"video": Path(video).name, "model": model, "detector": detector, "setting": setting,
            "fps": s["fps"], "frames": s["frames"], "faces": s["faces_classified"],
            "detector_runs": s["detector_runs"], "tracks": s["tracks"], "ms_per_frame": s["ms_per_frame"]}


def row_in_fresh_process(video: str, model: str, detector: str, setting: str) -> dict:
    """`row` run in its own Python process (no state carried between rows); on failure, a
    dict with the last line of its error under "error"."""
    out = subprocess.run([sys.executable, __file__, "_row", video, model, detector, setting],
                         capture_output=True, text=True, cwd=ROOT)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        error = ((out.stderr or out.stdout).strip().splitlines() or ["failed"])[-1]
        return {"model": model, "detector": detector, "setting": setting, "error": error}
    return json.loads(lines[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_row":
        print(json.dumps(row(*sys.argv[2:6])))
        return
    import _common

    from emorec.config import load_params

    params = load_params(ROOT / "params.yaml")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", default=params["infer"]["source"])
    parser.add_argument("--models", nargs="*", default=[params["infer"]["model"]])
    parser.add_argument("--detectors", nargs="*", default=[params["infer"]["detector"]])
    parser.add_argument("--settings", nargs="*", default=["-"], help="infer key=value per row; - for params.yaml")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all rows; each row keeps its median")
    parser.add_argument("--json", type=Path, default=None, help="default reports/benchmarks/realtime_fps.json")
    args = parser.parse_args()
    video = Path(args.video) if Path(args.video).is_absolute() else ROOT / args.video
    print(f"video {video.name}, {os.cpu_count()} CPU cores; latency in ms per frame", file=sys.stderr)
    print(f"{'detector':<22}{'model':<34}{'setting':<22}{'FPS':>7}" + "".join(f"{s:>11}" for s in STAGES),
          file=sys.stderr)
    combos = [(d, m, st) for d in args.detectors for m in args.models for st in args.settings]
    runs: dict[tuple, list[dict]] = {c: [] for c in combos}
    for _ in range(args.repeats):   # rounds, so slow spells of the machine spread over all rows
        for detector, model, setting in combos:
            runs[(detector, model, setting)].append(row_in_fresh_process(str(video), model, detector, setting))
    rows = []
    for (detector, model, setting), got in runs.items():
        ok = sorted((r for r in got if "error" not in r), key=lambda r: r["fps"])
        if not ok:
            rows.append(got[-1])
            print(f"{detector:<22}{Path(model).name:<34}{setting:<22} failed: {got[-1]['error']}", file=sys.stderr)
            continue
        r = {**ok[len(ok) // 2], "fps_runs": [x["fps"] for x in ok]}
        rows.append(r)
        print(f"{detector:<22}{Path(model).name:<34}{setting:<22}{r['fps']:>7.1f}"
              + "".join(f"{r['ms_per_frame'].get(k, 0):>11.2f}" for k in STAGES), file=sys.stderr)
    path = _common.save("realtime_fps", {"video": video.name, "repeats": args.repeats, "rows": rows}, args.json)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
