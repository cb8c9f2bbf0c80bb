"""DVC stage `prepare` for one dataset (see dvc.yaml); the work is in emorec.pipeline."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import prepare_stage

if __name__ == "__main__":
    run_stage(prepare_stage, sys.argv[1:], ["dataset"], prog="stages/prepare.py")
