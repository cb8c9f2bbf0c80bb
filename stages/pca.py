"""DVC stage `pca`: the body is emorec.stages.pca.run."""

import sys

from emorec.stages import pca, run_stage

if __name__ == "__main__":
    run_stage(pca.run, sys.argv[1:], ["dataset"], prog="stages/pca.py")
