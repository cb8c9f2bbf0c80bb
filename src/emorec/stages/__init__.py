"""One module per DVC stage, each with a `run(...)` holding that stage's body.

`stages/<name>.py` at the project root are the thin scripts DVC runs; the `emorec` CLI
calls the same `run` functions."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from emorec.errors import EmorecError  # noqa: E402


def run_stage(func: Callable, argv: Sequence[str], arg_names: Sequence[str], prog: str) -> None:
    """Run a stage function with positional CLI args; user errors exit 2 with one message."""
    parser = argparse.ArgumentParser(prog=prog, description=(func.__doc__ or "").strip())
    for name in arg_names:
        parser.add_argument(name)
    args = parser.parse_args(list(argv))
    try:
        func(*(getattr(args, n) for n in arg_names))
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
