"""DVC stage `fetch` for one dataset (see dvc.yaml); the work is in emorec.pipeline."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import fetch_stage

if __name__ == "__main__":
    run_stage(fetch_stage, sys.argv[1:], ["dataset"], prog="stages/fetch.py")
