"""DVC stage `infer`: the champion on the video named in params (infer.source), outputs to
reports/infer/; the work is in emorec.realtime via emorec.pipeline."""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported, for retina-face

from emorec.cli import run_stage  # noqa: E402
from emorec.pipeline import infer_stage  # noqa: E402

if __name__ == "__main__":
    run_stage(infer_stage, sys.argv[1:], [], prog="stages/infer.py")
