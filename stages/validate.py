"""DVC stage `validate`: the body is emorec.stages.validate.run."""

import sys

from emorec.stages import run_stage, validate

if __name__ == "__main__":
    run_stage(validate.run, sys.argv[1:], ["dataset"], prog="stages/validate.py")
