"""DVC stage `infer`: the body is emorec.stages.infer.run."""

import os
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # before TensorFlow is imported, for retina-face

from emorec.stages import infer, run_stage  # noqa: E402

if __name__ == "__main__":
    run_stage(infer.run, sys.argv[1:], [], prog="stages/infer.py")
