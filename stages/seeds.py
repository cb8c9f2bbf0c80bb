"""DVC stage `seeds`; the work is in emorec.pipeline.seeds_stage."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import seeds_stage

if __name__ == "__main__":
    run_stage(seeds_stage, sys.argv[1:], [], prog="stages/seeds.py")
