"""DVC stage `report`: the body is emorec.stages.report.run."""

import sys

from emorec.stages import report, run_stage

if __name__ == "__main__":
    run_stage(report.run, sys.argv[1:], [], prog="stages/report.py")
