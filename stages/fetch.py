"""DVC stage `fetch`: the body is emorec.stages.fetch.run."""

import sys

from emorec.stages import fetch, run_stage

if __name__ == "__main__":
    run_stage(fetch.run, sys.argv[1:], ["dataset"], prog="stages/fetch.py")
