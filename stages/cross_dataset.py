"""DVC stage `cross_dataset`: the body is emorec.stages.cross_dataset.run."""

import sys

from emorec.stages import cross_dataset, run_stage

if __name__ == "__main__":
    run_stage(cross_dataset.run, sys.argv[1:], [], prog="stages/cross_dataset.py")
