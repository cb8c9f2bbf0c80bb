"""`emorec` command line: the pipeline stages, plus listings of models and datasets."""

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emorec",
        description="Facial emotion recognition pipeline (DVC stages, MLflow tracking). "
                    "Each subcommand runs one pipeline stage with the settings in params.yaml; "
                    "`dvc repro` runs them all in order.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("fetch", help="find a dataset, verify it, write its normalized cache")
    p.add_argument("dataset")
    p = sub.add_parser("validate", help="Great Expectations checks and duplicate report")
    p.add_argument("dataset")
    p = sub.add_parser("prepare", help="split, drop leaking duplicates, balance by augmentation")
    p.add_argument("dataset")
    p = sub.add_parser("pca", help="per-channel PCA reconstruction of a prepared dataset")
    p.add_argument("dataset")
    for name, text in (("train", "train one model and log it to MLflow"),
                       ("evaluate", "evaluate a trained model on the test split")):
        p = sub.add_parser(name, help=text)
        p.add_argument("dataset")
        p.add_argument("model")
        p.add_argument("balance", choices=("plain", "balanced"))
    sub.add_parser("report", help="write reports/results.md beside the paper's numbers")
    sub.add_parser("models", help="list the registered model architectures")
    sub.add_parser("datasets", help="list the dataset adapters")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from emorec import pipeline

    try:
        if args.command == "models":
            from emorec import models

            for name in models.available():
                print(f"{name}: {models.get(name).description}")
        elif args.command == "datasets":
            from emorec import datasets

            print("\n".join(datasets.available()))
        elif args.command in ("fetch", "validate", "prepare", "pca"):
            getattr(pipeline, f"{args.command}_stage")(args.dataset)
        elif args.command in ("train", "evaluate"):
            getattr(pipeline, f"{args.command}_stage")(args.dataset, args.model, args.balance)
        elif args.command == "report":
            pipeline.report_stage()
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
