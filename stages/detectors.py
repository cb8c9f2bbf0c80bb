"""DVC stage `detectors`: recall and false positives of every face detector on the WIDER
FACE photos named in params (detector_eval); the work is in emorec.pipeline."""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported, for retina-face

from emorec.cli import run_stage  # noqa: E402
from emorec.pipeline import detectors_stage  # noqa: E402

if __name__ == "__main__":
    run_stage(detectors_stage, sys.argv[1:], [], prog="stages/detectors.py")
