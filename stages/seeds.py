"""DVC stage `seeds`: the body is emorec.stages.seeds.run."""

import sys

from emorec.stages import run_stage, seeds

if __name__ == "__main__":
    run_stage(seeds.run, sys.argv[1:], [], prog="stages/seeds.py")
