"""DVC stage `explain`; the work is in emorec.pipeline.explain_stage."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import explain_stage

if __name__ == "__main__":
    run_stage(explain_stage, sys.argv[1:], [], prog="stages/explain.py")
