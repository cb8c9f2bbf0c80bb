"""DVC stage `combine`: the body is emorec.stages.combine.run."""

import sys

from emorec.stages import combine, run_stage

if __name__ == "__main__":
    run_stage(combine.run, sys.argv[1:], [], prog="stages/combine.py")
