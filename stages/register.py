"""DVC stage `register`: the body is emorec.stages.register.run."""

import sys

from emorec.stages import register, run_stage

if __name__ == "__main__":
    run_stage(register.run, sys.argv[1:], ["dataset"], prog="stages/register.py")
