"""Quiet start-up: TensorFlow's C++ layer (absl, CUDA probing) writes "failed call to
cuInit" and friends straight to file descriptor 2 while it loads, whatever Python's
logging says. The CLI hides them unless `--verbose`."""

from __future__ import annotations

import os

QUIET_VAR = "EMOREC_QUIET_TF"


def quiet_tensorflow() -> None:
    """Import TensorFlow with file descriptor 2 pointed at /dev/null (then restored)."""
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def quiet_if_asked() -> None:
    """For commands that check their options first and load TensorFlow later."""
    if os.environ.get(QUIET_VAR) == "1":
        quiet_tensorflow()
