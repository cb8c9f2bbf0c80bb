"""DVC stage `explain`: the body is emorec.stages.explain.run."""

import sys

from emorec.stages import explain, run_stage

if __name__ == "__main__":
    run_stage(explain.run, sys.argv[1:], [], prog="stages/explain.py")
