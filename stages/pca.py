"""DVC stage `pca` for one dataset: per-channel PCA reconstruction of its prepared splits
(paper §IV.B); the work is in emorec.pipeline."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import pca_stage

if __name__ == "__main__":
    run_stage(pca_stage, sys.argv[1:], ["dataset"], prog="stages/pca.py")
