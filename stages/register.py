"""DVC stage `register` for one grid dataset: register the best run (validation metric) in
the MLflow registry and move `champion` only if it wins; the work is in emorec.pipeline."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import register_stage

if __name__ == "__main__":
    run_stage(register_stage, sys.argv[1:], ["dataset"], prog="stages/register.py")
