"""DVC stage `export` for one grid dataset: the champion to .keras, SavedModel, TFLite
(float32, dynamic-range) and ONNX, each checked against Keras; work in emorec.pipeline."""

import sys

from emorec.cli import run_stage
from emorec.pipeline import export_stage

if __name__ == "__main__":
    run_stage(export_stage, sys.argv[1:], ["dataset"], prog="stages/export.py")
