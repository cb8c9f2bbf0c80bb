"""DVC stage `distill`: the body is emorec.stages.distill.run."""

import sys

from emorec.stages import distill, run_stage

if __name__ == "__main__":
    run_stage(distill.run, sys.argv[1:], [], prog="stages/distill.py")
