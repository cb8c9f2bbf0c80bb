"""DVC stage `report`: our metrics beside the paper's, in reports/results.md."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import report_stage

if __name__ == "__main__":
    run_stage(report_stage, sys.argv[1:], [], prog="stages/report.py")
