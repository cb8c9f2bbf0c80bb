"""DVC stage `crossval`; the work is in emorec.pipeline.crossval_stage."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import crossval_stage

if __name__ == "__main__":
    run_stage(crossval_stage, sys.argv[1:], [], prog="stages/crossval.py")
