"""The grid: which (dataset, model, balance) runs the active profile trains.

A profile is a list of runs. `full` is every grid dataset x model x balance with the
paper's settings; `cpu` (the default 2-core run) keeps only the cells each model's
`models.<name>.cpu.cells` allows; `gpu` trains every cell (or `models.<name>.gpu.cells`)
with each model's `gpu:` recipe. Which of them train here (their data present) is
`emorec.runs`; this module reads params only."""

from __future__ import annotations

from dataclasses import dataclass

from emorec.config import section
from emorec.errors import EmorecError

PROFILES = ("cpu", "gpu", "full")
BALANCE_MODES = ("plain", "balanced")
PCA_SUFFIX = "_pca"



@dataclass(frozen=True)
class Run:
    dataset: str
    model: str
    balance: str

    @property
    def name(self) -> str:
        return f"{self.dataset}-{self.model}-{self.balance}"

    def __iter__(self):
        return iter((self.dataset, self.model, self.balance))

    @classmethod
    def parse(cls, spec: str) -> "Run":
        """`dataset/model/balance`, as params.yaml names a run in the studies."""
        parts = spec.split("/")
        if len(parts) != 3:
            raise EmorecError(f"params.yaml: {spec!r} must name a grid run as dataset/model/balance")
        return cls(*parts)


def profile(params: dict) -> str:
    grid = params.get("grid") or {}
    name = grid.get("profile", "full")
    if name not in PROFILES:
        raise EmorecError(f"params.yaml: grid.profile must be one of {PROFILES}, got {name!r}")
    return name


def combined_name(params: dict) -> str | None:
    """The name of the dataset the `combine` stage builds from several (params combine.name)."""
    return (params.get("combine") or {}).get("name")


def is_combined(params: dict, dataset: str) -> bool:
    return dataset == combined_name(params)


def base_dataset(params: dict, dataset: str) -> str:
    """`affectnet_pca` -> `affectnet` (PCA-reconstructed inputs of a fetched dataset);
    the combined dataset is its own base (it has no fetch block)."""
    if is_combined(params, dataset):
        return dataset
    if dataset.endswith(PCA_SUFFIX) and dataset not in section(params, "fetch"):
        base = dataset[: -len(PCA_SUFFIX)]
        if base not in section(params, "pca", "datasets"):
            raise EmorecError(f"params.yaml: grid dataset {dataset!r} needs {base!r} in pca.datasets")
        return base
    return dataset


def protocol_for(params: dict, dataset: str) -> str:
    """prepare.protocol, unless prepare.protocol_overrides names this dataset (the combined
    dataset keeps each source's own)."""
    if is_combined(params, dataset):
        return "per source"
    prep = section(params, "prepare")
    return (prep.get("protocol_overrides") or {}).get(base_dataset(params, dataset), prep["protocol"])


def check_names(params: dict, dataset: str, model: str | None = None, balance: str | None = None) -> None:
    """Unknown names fail here with the known ones listed, before any data is read."""
    from emorec import models

    base_dataset(params, dataset)
    if not is_combined(params, dataset) and base_dataset(params, dataset) not in section(params, "fetch"):
        raise EmorecError(f"unknown dataset {dataset!r} in params.yaml: no fetch.{dataset} block "
                          f"(configured datasets: {', '.join(sorted(section(params, 'fetch')))})")
    if model is not None:
        models.get(model)
        if model not in section(params, "models"):
            raise EmorecError(f"params.yaml: no settings under models.{model}")
    if balance is not None and balance not in BALANCE_MODES:
        raise EmorecError(f"unknown balance mode {balance!r}; known: {', '.join(BALANCE_MODES)}")


def cells(params: dict, name: str | None = None) -> list[Run]:
    """Every run of a profile, data present or not."""
    name = name or profile(params)
    grid = section(params, "grid")
    runs = []
    for dataset in grid["datasets"]:
        for model in grid["models"]:
            allowed = ((section(params, "models", model).get(name) or {}).get("cells") or {}
                       if name in ("cpu", "gpu") else {})
            for balance in grid["balance"]:
                if _allowed(allowed, dataset, balance):
                    runs.append(Run(dataset, model, balance))
    return runs


def _allowed(cells: dict, dataset: str, balance: str) -> bool:
    """A model's `cells:`: {datasets: [...], balance: [...]} (every pair of them), or per
    dataset the balance modes it trains ({fer2013: [plain, balanced], combined: [plain]})."""
    if not cells:
        return True
    if set(cells) <= {"datasets", "balance"}:
        return dataset in cells.get("datasets", [dataset]) and balance in cells.get("balance", [balance])
    return balance in (cells.get(dataset) or [])
