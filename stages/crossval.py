"""DVC stage `crossval`: the body is emorec.stages.crossval.run."""

import sys

from emorec.stages import crossval, run_stage

if __name__ == "__main__":
    run_stage(crossval.run, sys.argv[1:], [], prog="stages/crossval.py")
