"""DVC stage `choose`: the body is emorec.stages.choose.run."""

import sys

from emorec.stages import choose, run_stage

if __name__ == "__main__":
    run_stage(choose.run, sys.argv[1:], [], prog="stages/choose.py")
