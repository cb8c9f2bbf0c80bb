"""DVC stage `evaluate`: the body is emorec.stages.evaluate.run."""

import sys

from emorec.stages import evaluate, run_stage

if __name__ == "__main__":
    run_stage(evaluate.run, sys.argv[1:], ["dataset", "model", "balance"], prog="stages/evaluate.py")
