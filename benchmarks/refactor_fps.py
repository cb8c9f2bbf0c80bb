"""Real-time FPS of the infer stage's code path at two commits, in one run: did a refactor
cost speed? (The architecture issue moved the loop onto EmotionRecognizer.)

Each commit's `src/` is checked out into a temporary git worktree and imported from
there; both sides use this checkout's params.yaml, the same model file and video, and
alternate in fresh processes, `--repeats` rounds, median per side.

    python benchmarks/refactor_fps.py --before de36a89 --model path/to/model.keras
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The infer stage's entry point at either layout: emorec.stages.infer.run (now) or
# emorec.pipeline.infer_stage (before the architecture issue).
RUN_ONE = """
import json, os, sys, tempfile
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
from pathlib import Path
video, model, detector, root = sys.argv[1:5]
try:
    from emorec.stages.infer import run
except ImportError:
    from emorec.pipeline import infer_stage as run
with tempfile.TemporaryDirectory() as out:
    s = run(video, model, detector, out, root=Path(root), overrides={"show": False}, progress=False)
import emorec
print(json.dumps({"fps": s["fps"], "frames": s["frames"], "faces": s["faces_classified"],
                  "ms_per_frame": s["ms_per_frame"], "code": str(Path(emorec.__file__).parents[1])}))
"""


def one(src: Path, video: str, model: str, detector: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run([sys.executable, "-c", RUN_ONE, video, model, detector, str(ROOT)],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise SystemExit(f"run with {src} failed: {(out.stderr or out.stdout)[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    import _common

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="git ref of the 'before' side")
    parser.add_argument("--model", required=True, help="a .keras/.onnx model file both sides load")
    parser.add_argument("--video", default=str(ROOT.parent / "shared/media/videos/webcam_640x480_one_face.mp4"))
    parser.add_argument("--detector", default="yunet")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), args.before], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            sides = {"before": tree / "src", "after": ROOT / "src"}
            got: dict[str, list[dict]] = {k: [] for k in sides}
            for _ in range(args.repeats):
                for name, src in sides.items():
                    r = one(src, args.video, args.model, args.detector)
                    got[name].append(r)
                    print(f"{name:<7} {r['fps']:7.1f} FPS  ({r['code']})", file=sys.stderr)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    before_sha = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    after_sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                               text=True).stdout.strip()
    result = {"video": Path(args.video).name, "model": Path(args.model).name, "detector": args.detector,
              "repeats": args.repeats}
    for name, sha in (("before", before_sha), ("after", after_sha)):
        fps = [r["fps"] for r in got[name]]
        result[name] = {"commit": sha, "fps_runs": fps, "fps_median": statistics.median(fps),
                        "ms_per_frame_last": got[name][-1]["ms_per_frame"], "faces": got[name][-1]["faces"]}
    result["ratio_after_before"] = round(result["after"]["fps_median"] / result["before"]["fps_median"], 3)
    path = _common.save("refactor_fps", result)
    print(json.dumps({k: result[k] for k in ("before", "after", "ratio_after_before")}, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
