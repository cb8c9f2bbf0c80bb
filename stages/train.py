"""DVC stage `train`: the body is emorec.stages.train.run."""

import sys

from emorec.stages import run_stage, train

if __name__ == "__main__":
    run_stage(train.run, sys.argv[1:], ["dataset", "model", "balance"], prog="stages/train.py")
