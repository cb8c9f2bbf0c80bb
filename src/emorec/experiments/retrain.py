"""The GitHub Actions retrain workflow's logic, here so it is tested and runnable locally:
turning the dispatch inputs into `dvc exp run -S` overrides, and writing the job summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from emorec.errors import EmorecError


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in (text or "").split(",") if n.strip()]


def overrides(params: dict, datasets: str = "", models_: str = "", epochs: str = "",
              scope: str = "cpu", promote: bool = False) -> list[str]:
    """`-S key=value` words for `dvc exp run`; bad inputs fail before any training starts."""
    from emorec import models

    args: list[str] = []
    ds = _names(datasets)
    if ds:
        known = set(params["fetch"]) | {f"{d}_pca" for d in params["pca"]["datasets"]} | {params["combine"]["name"]}
        unknown = sorted(set(ds) - known)
        if unknown:
            raise EmorecError(f"retrain: unknown dataset(s) {unknown}; known: {sorted(known)}")
        args += ["-S", f"grid.datasets=[{','.join(ds)}]"]
    ms = _names(models_)
    if ms:
        unknown = sorted(set(ms) - set(models.available()))
        if unknown:
            raise EmorecError(f"retrain: unknown model(s) {unknown}; known: {models.available()}")
        missing = sorted(m for m in ms if m not in params["models"])
        if missing:
            raise EmorecError(f"retrain: no models.<name> block in params.yaml for {missing}")
        args += ["-S", f"grid.models=[{','.join(ms)}]"]
    if epochs:
        if not epochs.isdigit() or int(epochs) < 1:
            raise EmorecError(f"retrain: epochs must be a positive integer, got {epochs!r}")
        args += ["-S", f"train.epochs={int(epochs)}"]
    if scope not in ("cpu", "full"):
        raise EmorecError(f"retrain: scope must be cpu or full, got {scope!r}")
    args += ["-S", f"grid.profile={scope}"]
    if not promote:
        # register as challenger only; export and infer then use that candidate
        infer_model = str(params["infer"]["model"])
        if infer_model == "auto":      # the choose stage picks among champions; a challenger run
            infer_model = "models:/emorec-fer2013@champion"   # shows the FER2013 candidate
        infer_model = infer_model.replace("@champion", "@challenger")
        args += ["-S", "register.auto_promote=false", "-S", "export.alias=challenger",
                 "-S", f"infer.model={infer_model}"]
    return args


def _run(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    return result.stdout if result.returncode == 0 else f"(`{' '.join(cmd)}` failed: {result.stderr.strip()[:400]})"


def summary(root: Path, base: str) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: metrics against the default branch, the paper
    comparison, and what the registry decided."""
    import json

    lines = ["# emorec retrain", ""]
    lines += [f"Metrics against `{base}` (`dvc metrics diff {base} --md`):", "",
              _run(["dvc", "metrics", "diff", base, "--md"], root) or "(no metric changed)", ""]
    results = root / "reports" / "results.md"
    if results.exists():
        text = results.read_text()
        cut = text.find("## Provenance")
        lines += [text[:cut] if cut > 0 else text, ""]
    for path in sorted((root / "reports" / "registry").glob("*.json")):
        d = json.loads(path.read_text())
        if "skipped" in d:
            lines.append(f"- registry {path.stem}: skipped ({d['skipped']})")
        else:
            lines.append(f"- registry {d.get('model_name')}: v{d.get('version')} "
                         f"{'promoted to champion' if d.get('promoted') else 'not promoted'}: {d.get('reason')}")
    lines.append("")
    return "\n".join(lines)


def main_overrides() -> None:
    from emorec.config import load_params

    env = os.environ
    try:
        args = overrides(load_params(), env.get("IN_DATASETS", ""), env.get("IN_MODELS", ""),
                         env.get("IN_EPOCHS", ""), env.get("IN_SCOPE", "cpu") or "cpu",
                         env.get("IN_PROMOTE", "false") == "true")
    except EmorecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print("args=" + " ".join(args))


def main_summary() -> None:
    from emorec.config import project_root

    base = os.environ.get("BASE_REF") or "origin/main"
    print(summary(project_root(), base))
