"""`dvc repro` is only honest if every stage lists the code it runs.

For each stage in dvc.yaml: import its script in a fresh interpreter and collect every
`emorec` module that got loaded; add every `emorec` module reachable through import
statements anywhere in those modules (imports inside functions run later, so a fresh
import alone would miss them); and where that reaches a registry package (models,
dataset adapters), every module of the package, since the registry imports them all
when asked for a name. Each of those files must be covered by the stage's `deps`. Also
no import cycles among the library's modules, and no module over the size limit."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
# Packages whose registry imports every module in them on first lookup.
REGISTRY_PACKAGES = {"emorec.models", "emorec.data.adapters"}
MAX_LINES = 400


def module_file(name: str) -> Path | None:
    base = SRC / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


@lru_cache(maxsize=None)
def imported_by(name: str) -> frozenset[str]:
    """emorec modules named by any import statement in module `name` (incl. parents)."""
    path = module_file(name)
    if path is None or name == "emorec":
        # The root package imports only on `emorec.EmotionRecognizer` (its lazy front door),
        # which no stage touches; following it would make every stage depend on inference.
        return frozenset()
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        targets = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for target in targets:
            if target.split(".")[0] != "emorec":
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):   # a module imports its parent packages too
                if module_file(".".join(parts[:i])):
                    found.add(".".join(parts[:i]))
    return frozenset(found)


def closure(start: set[str]) -> set[str]:
    seen, todo = set(), list(start)
    while todo:
        name = todo.pop()
        if name in seen or module_file(name) is None:
            continue
        seen.add(name)
        todo.extend(imported_by(name))
        if name in REGISTRY_PACKAGES:
            pkg_dir = module_file(name).parent
            todo.extend(module_name(p) for p in pkg_dir.glob("*.py"))
    return seen


def loaded_by_import(script: Path) -> set[str]:
    code = ("import json, runpy, sys; runpy.run_path(sys.argv[1], run_name='not_main'); "
            "print(json.dumps(sorted(m for m in sys.modules if m == 'emorec' or m.startswith('emorec.'))))")
    out = subprocess.run([sys.executable, "-c", code, str(script)], capture_output=True, text=True,
                         cwd=REPO, timeout=300, env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def code_files(script: Path) -> set[str]:
    """Repo-relative paths of every emorec source file the stage script can run."""
    modules = closure(loaded_by_import(script) | {"emorec"})
    return {str(module_file(m).relative_to(REPO)) for m in modules}


def stages() -> dict[str, dict]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def undeclared(stage: dict) -> tuple[str, list[str]]:
    body = stage.get("do", stage)
    script = body["cmd"].split()[1]
    deps = [d for d in body.get("deps", []) if isinstance(d, str)]
    missing = sorted(f for f in code_files(REPO / script) if not covered(f, deps))
    if script not in deps:
        missing.insert(0, script)
    return script, missing


@pytest.mark.parametrize("name", sorted(stages()))
def test_every_stage_declares_the_code_it_runs(name):
    script, missing = undeclared(stages()[name])
    assert not missing, (f"dvc.yaml stage {name!r} runs {script}, which can import {missing}; "
                         "add them to its deps so `dvc repro` re-runs it when they change")


def test_the_check_fails_on_an_undeclared_import():
    """The proof that the check can fail: a stage module gains an import its deps lack."""
    stage = {"cmd": "python stages/report.py", "deps": ["stages/report.py", "src/emorec"]}
    assert not undeclared(stage)[1]
    narrow = {"cmd": "python stages/report.py", "deps": ["stages/report.py", "src/emorec/stages/report.py"]}
    assert "src/emorec/reporting/tables.py" in undeclared(narrow)[1]


def test_no_import_cycles_among_library_modules():
    graph = {module_name(p): {m for m in imported_by(module_name(p)) if m != module_name(p)}
             for p in (SRC / "emorec").rglob("*.py")}
    # a package's __init__ is imported by its own modules; only cycles through other modules count
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    state: dict[str, int] = {}

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_no_module_is_over_the_size_limit():
    big = {str(p.relative_to(REPO)): n for p in (SRC / "emorec").rglob("*.py")
           if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not big, f"split these modules (over {MAX_LINES} lines): {big}"


def test_grid_yaml_lists_the_runs_params_yaml_names():
    """dvc.yaml iterates over grid.yaml; it must be what `emorec grid --write` makes now."""
    from emorec import runs
    from emorec.config import load_params

    committed = yaml.safe_load((REPO / "grid.yaml").read_text())
    assert committed == runs.grid_file_content(load_params(REPO / "params.yaml"), REPO), (
        "grid.yaml is stale: run `emorec grid --write`")


def test_trainings_depend_on_their_own_datasets_settings_only():
    """Per-dataset training settings sit outside `train`, and each training stage names its own
    dataset's entry: editing AffectNet's epochs must not re-train FER2013 (a DVC missing-key
    error, were a dataset's entry absent, is what the every-name check below prevents)."""
    from emorec.config import load_params

    params = load_params(REPO / "params.yaml")
    assert "overrides" not in params["train"]
    names = set(params["fetch"]) | {f"{d}_pca" for d in params["pca"]["datasets"]} | {params["combine"]["name"]}
    assert names | set(params["grid"]["datasets"]) <= set(params["train_overrides"])
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage, key in (("train", "${item.dataset}"), ("seeds", "${seeds.dataset}"), ("crossval", "${crossval.dataset}")):
        declared = stages[stage].get("do", stages[stage])["params"]
        assert "train" in declared and f"train_overrides.{key}" in declared and "train_overrides" not in declared
