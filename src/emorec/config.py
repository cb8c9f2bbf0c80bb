"""Reading params.yaml and locating the project root, the one place paths are decided."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from emorec.errors import EmorecError


def project_root(start: Path | None = None) -> Path:
    """DVC_ROOT when DVC runs us; otherwise the nearest folder upwards holding params.yaml."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").exists():
            return folder
    return here


def load_params(path: Path | None = None) -> dict[str, Any]:
    path = path or project_root() / "params.yaml"
    try:
        with open(path, encoding="utf-8") as fh:
            params = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise EmorecError(f"{path}: params file not found") from None
    except yaml.YAMLError as exc:
        raise EmorecError(f"{path}: invalid YAML ({exc})") from None
    if not isinstance(params, dict):
        raise EmorecError(f"{path}: expected a mapping at the top level")
    return params


def section(params: dict, *keys: str) -> Any:
    """params[k1][k2]..., with an error that names the missing key."""
    node: Any = params
    for i, key in enumerate(keys):
        if not isinstance(node, dict) or key not in node:
            raise EmorecError(f"params.yaml: missing key {'.'.join(keys[: i + 1])}")
        node = node[key]
    return node


def apply_overrides(params: dict, assignments: list[str]) -> dict:
    """`key.sub=value` words, as `dvc exp run -S` takes them, applied to a copy of params
    (values parsed as YAML)."""
    import copy

    out = copy.deepcopy(params)
    for item in assignments:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise EmorecError(f"override {item!r}: expected key.path=value")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EmorecError(f"override {item!r}: {part} is not a mapping in params.yaml")
        node[leaf] = yaml.safe_load(raw)
    return out


def flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists become their string form (for MLflow params)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


class Paths:
    """Where each stage reads and writes, relative to the project root."""

    def __init__(self, root: Path | None = None):
        self.root = root or project_root()

    def cache(self, dataset: str) -> Path:
        return self.root / "data" / "cache" / f"{dataset}.npz"

    def downloads(self) -> Path:
        return self.root / "data" / "downloads"

    def validation_report(self, dataset: str) -> Path:
        return self.root / "reports" / "validation" / f"{dataset}.json"

    def prepared(self, dataset: str) -> Path:
        return self.root / "data" / "prepared" / dataset

    def run_name(self, dataset: str, model: str, balance: str) -> str:
        return f"{dataset}-{model}-{balance}"

    def model_dir(self, dataset: str, model: str, balance: str) -> Path:
        return self.root / "models" / dataset / f"{model}-{balance}"

    def training_dir(self, dataset: str, model: str, balance: str) -> Path:
        return self.root / "reports" / "training" / self.run_name(dataset, model, balance)

    def metrics(self, dataset: str, model: str, balance: str) -> Path:
        return self.root / "metrics" / f"{self.run_name(dataset, model, balance)}.json"

    def evaluation_dir(self, dataset: str, model: str, balance: str) -> Path:
        return self.root / "reports" / "evaluation" / self.run_name(dataset, model, balance)


DEFAULT_MODEL_FILE = Path("reports") / "default_model.json"


def resolve_model(model: str, root: Path) -> str:
    """`infer.model: auto` -> the champion the `choose` stage picked on the union of the
    validation splits; any other model as given."""
    if model != "auto":
        return model
    import json

    chosen = root / DEFAULT_MODEL_FILE
    if not chosen.is_file():
        raise EmorecError(f"infer.model is auto but {chosen} is missing; run `dvc repro choose` "
                          "(or name a model: --model models:/emorec-fer2013@champion)")
    return str(json.loads(chosen.read_text())["model"])
