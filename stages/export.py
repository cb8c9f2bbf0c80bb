"""DVC stage `export`: the body is emorec.stages.export.run."""

import sys

from emorec.stages import export, run_stage

if __name__ == "__main__":
    run_stage(export.run, sys.argv[1:], ["dataset"], prog="stages/export.py")
