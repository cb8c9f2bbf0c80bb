"""The MLflow model registry: register the best run, promote it safely, roll back.

Rules:
- The candidate for dataset D is the run of the current pipeline with the best
  *validation* metric (never test).
- It becomes `champion` of `emorec-<D>` only if it beats the current champion on the same
  validation data by at least `margin`; if the champion was validated on other data, it
  is re-evaluated on the candidate's validation set first. Otherwise the candidate gets
  the `challenger` alias and the reason is recorded on the version.
- Before the alias moves, the new champion records the version it replaces
  (`replaced_version`), so `rollback` can restore it; an alias move is one store write,
  so a crash leaves either the old or the new champion, never a half state.
- Compare-and-promote runs under a file lock, so concurrent promotions are serialised.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from emorec.errors import EmorecError

CHAMPION = "champion"
CHALLENGER = "challenger"


def model_name(dataset: str) -> str:
    return f"emorec-{dataset}"


@dataclass
class Decision:
    dataset: str
    model_name: str
    version: str
    run_id: str
    metric: str
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    margin: float
    promoted: bool
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def registry_lock(lock_path: Path, timeout: float = 120.0):
    """Serialise compare-and-promote across processes sharing this lock file."""
    from filelock import FileLock, Timeout

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise EmorecError(f"{lock_path}: another promotion holds the registry lock for over "
                          f"{timeout:.0f} s; retry, or remove the lock file if no emorec runs") from None
    try:
        yield
    finally:
        lock.release()


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def current_alias(name: str, alias: str = CHAMPION):
    """The version holding `alias`, or None (also when the model is not registered yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def alias_version(name: str, alias: str = CHAMPION) -> str | None:
    version = current_alias(name, alias)
    return None if version is None else str(version.version)


def register_version(model_uri: str, name: str, tags: dict) -> str:
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(name, description=f"emorec emotion classifier for {name[7:]}")
        except MlflowException:
            pass  # created concurrently
    version = mlflow.register_model(model_uri, name, tags={k: str(v)[:5000] for k, v in tags.items()})
    return str(version.version)


def decide(candidate_score: float, champion_score: float | None, margin: float) -> tuple[bool, str]:
    """The promotion rule alone, so it can be tested and explained."""
    if champion_score is None:
        return True, "no champion yet"
    if candidate_score >= champion_score + margin:
        return True, (f"beats the champion by {candidate_score - champion_score:+.4f} "
                      f"(margin {margin})")
    return False, (f"does not beat the champion by the margin: {candidate_score:.4f} vs "
                   f"{champion_score:.4f} (needs >= {champion_score + margin:.4f})")


def repackaged(champion_run_id: str | None, champion_serving: str | None, run_id: str,
               serving: str | None) -> str | None:
    """Why a candidate that only ties should still take `champion`: it is the champion's own
    trained model (same training run, so the same weights and validation score) packaged with
    other serving settings (the detector, crop margin... the served pyfunc carries). Keeping the
    old version would serve the old settings. None when that is not the case."""
    if serving is None or champion_run_id != run_id or champion_serving == serving:
        return None
    return ("the champion's own trained model, re-packaged with the current serving settings "
            f"(was {champion_serving or 'not recorded'}; now {serving})")


def promote(name: str, version: str, reason: str) -> None:
    """Move `champion` to `version`, recording the version it replaces first."""
    from mlflow.exceptions import MlflowException

    client = _client()
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        raise EmorecError(f"{name}: there is no version {version!r} (see `emorec registry list`)") from None
    old = current_alias(name)
    if old is not None and str(old.version) == str(version):
        return
    client.set_model_version_tag(name, version, "replaced_version", "" if old is None else str(old.version))
    client.set_model_version_tag(name, version, "promoted_at", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    client.set_model_version_tag(name, version, "promotion_reason", reason)
    client.set_registered_model_alias(name, CHAMPION, version)
    challenger = current_alias(name, CHALLENGER)
    if challenger is not None and str(challenger.version) == str(version):
        client.delete_registered_model_alias(name, CHALLENGER)


def rollback(name: str) -> str:
    """Move `champion` back to the version the current champion replaced."""
    client = _client()
    current = current_alias(name)
    if current is None:
        raise EmorecError(f"{name}: no champion to roll back")
    previous = (current.tags or {}).get("replaced_version", "")
    if not previous:
        raise EmorecError(f"{name}: champion version {current.version} replaced no earlier "
                          "champion; nothing to roll back to")
    client.get_model_version(name, previous)  # raises if it was deleted
    client.set_model_version_tag(name, str(current.version), "rolled_back_at",
                                 time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    client.set_registered_model_alias(name, CHAMPION, previous)
    return previous


def list_versions(name: str) -> list[dict]:
    client = _client()
    found = client.search_model_versions(f"name = '{name}'")
    # search results carry no aliases; a per-version read does
    versions = [client.get_model_version(name, str(v.version)) for v in found]
    out = []
    for v in sorted(versions, key=lambda v: int(v.version)):
        out.append({"version": str(v.version), "aliases": list(v.aliases or []),
                    "run_id": v.run_id, "metric": (v.tags or {}).get("validation_metric", ""),
                    "val_score": (v.tags or {}).get("val_score", ""),
                    "test_accuracy": (v.tags or {}).get("test_accuracy", ""),
                    "weights": (v.tags or {}).get("weights", ""),
                    "note": (v.tags or {}).get("promotion_reason")
                    or (v.tags or {}).get("not_promoted_reason", "")})
    return out


def register_and_maybe_promote(*, dataset: str, run: dict, tags: dict, metric: str, margin: float,
                               lock_path: Path, score_champion_on_candidate_data,
                               auto_promote: bool = True) -> Decision:
    """Register `run` as a new version and promote it per the rules above.

    `score_champion_on_candidate_data(version)` returns the champion's score on the
    candidate's validation data; it is called only when the fingerprints differ.
    """
    name = model_name(dataset)
    client = _client()
    with registry_lock(lock_path):
        version = register_version(run["model_uri"], name, tags)
        champion = current_alias(name)
        champion_score = None
        if champion is not None:
            ctags = champion.tags or {}
            same_data = ctags.get("val_data_fingerprint") == tags["val_data_fingerprint"]
            same_metric = ctags.get("validation_metric") == metric
            if same_data and same_metric and "val_score" in ctags:
                champion_score = float(ctags["val_score"])
            else:
                champion_score = float(score_champion_on_candidate_data(champion))
        promoted, reason = decide(float(tags["val_score"]), champion_score, margin)
        if not promoted and champion is not None:
            why = repackaged(champion.run_id, (champion.tags or {}).get("serving_config"), run["run_id"],
                             tags.get("serving_config"))
            promoted, reason = (True, why) if why else (promoted, reason)
        if not auto_promote:
            promoted, reason = False, f"left to a person (register.auto_promote: false); rules said: {reason}"
        if promoted:
            promote(name, version, reason)
        else:
            client.set_model_version_tag(name, version, "not_promoted_reason", reason)
            client.set_registered_model_alias(name, CHALLENGER, version)
    return Decision(dataset, name, version, run["run_id"], metric, float(tags["val_score"]),
                    None if champion is None else str(champion.version), champion_score, margin,
                    promoted, reason)


def params_hash(params: dict) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lock_file_for(root: Path) -> Path:
    """The lock sits beside the embedded store; with a server, set EMOREC_REGISTRY_LOCK to a
    path all promoting machines share."""
    return Path(os.environ.get("EMOREC_REGISTRY_LOCK") or root / ".mlflow-registry.lock")
