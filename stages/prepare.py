"""DVC stage `prepare`: the body is emorec.stages.prepare.run."""

import sys

from emorec.stages import prepare, run_stage

if __name__ == "__main__":
    run_stage(prepare.run, sys.argv[1:], ["dataset"], prog="stages/prepare.py")
