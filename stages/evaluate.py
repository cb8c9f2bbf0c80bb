"""DVC stage `evaluate` for one (dataset, model, balance) cell of the grid; the work is in
emorec.pipeline."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import evaluate_stage

if __name__ == "__main__":
    run_stage(evaluate_stage, sys.argv[1:], ["dataset", "model", "balance"], prog="stages/evaluate.py")
