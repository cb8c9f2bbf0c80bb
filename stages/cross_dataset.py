"""DVC stage `cross_dataset`; the work is in emorec.pipeline.cross_dataset_stage."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import cross_dataset_stage

if __name__ == "__main__":
    run_stage(cross_dataset_stage, sys.argv[1:], [], prog="stages/cross_dataset.py")
