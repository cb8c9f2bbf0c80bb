"""Promotion, rollback and concurrency on a temporary sqlite MLflow registry."""

from __future__ import annotations

import multiprocessing as mp
import os

import numpy as np
import pytest

from emorec.errors import EmorecError
from emorec.experiments import registry


@pytest.fixture
def store(tmp_path, monkeypatch):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    return tmp_path, exp


def logged_model(exp: str) -> dict:
    """A tiny Keras model logged to MLflow, like the train stage does."""
    import keras
    import mlflow

    from emorec.experiments.tracking import log_keras_model

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    x = np.zeros((2, 4), np.float32)
    with mlflow.start_run(experiment_id=exp) as run:
        info = log_keras_model(model, mlflow.models.infer_signature(x, model.predict(x, verbose=0)), x)
    return {"run_id": run.info.run_id, "model_uri": info.model_uri}


def tags(score: float, fingerprint: str = "val-A") -> dict:
    return {"val_score": score, "validation_metric": "macro_f1", "val_data_fingerprint": fingerprint,
            "test_accuracy": 0.5, "weights": "scratch"}


def never_called(version):
    raise AssertionError("champion must not be re-scored when validation data are the same")


def test_decision_rule():
    assert registry.decide(0.50, None, 0.01) == (True, "no champion yet")
    assert registry.decide(0.52, 0.50, 0.01)[0] is True
    promoted, reason = registry.decide(0.505, 0.50, 0.01)
    assert promoted is False and "needs >= 0.5100" in reason
    assert registry.decide(0.50, 0.50, 0.0)[0] is True  # equal with zero margin: newest wins
    assert registry.decide(0.49, 0.50, 0.0)[0] is False


def test_promote_when_better_not_when_worse_and_rollback(store):
    tmp, exp = store
    lock = tmp / "reg.lock"
    name = registry.model_name("toy")
    run = logged_model(exp)
    first = registry.register_and_maybe_promote(dataset="toy", run=run, tags=tags(0.50), metric="macro_f1",
                                                margin=0.01, lock_path=lock,
                                                score_champion_on_candidate_data=never_called)
    assert first.promoted and first.reason == "no champion yet"
    better = registry.register_and_maybe_promote(dataset="toy", run=logged_model(exp), tags=tags(0.53),
                                                 metric="macro_f1", margin=0.01, lock_path=lock,
                                                 score_champion_on_candidate_data=never_called)
    assert better.promoted and registry.alias_version(name) == better.version
    worse = registry.register_and_maybe_promote(dataset="toy", run=logged_model(exp), tags=tags(0.535),
                                                metric="macro_f1", margin=0.01, lock_path=lock,
                                                score_champion_on_candidate_data=never_called)
    assert not worse.promoted
    assert registry.alias_version(name) == better.version
    assert registry.alias_version(name, registry.CHALLENGER) == worse.version
    rows = {r["version"]: r for r in registry.list_versions(name)}
    assert "needs >= 0.5400" in rows[worse.version]["note"]

    assert registry.rollback(name) == first.version
    assert registry.alias_version(name) == first.version
    with pytest.raises(EmorecError, match="replaced no earlier champion"):
        registry.rollback(name)
    registry.promote(name, worse.version, "by hand")
    assert registry.alias_version(name) == worse.version
    assert registry.alias_version(name, registry.CHALLENGER) is None
    with pytest.raises(EmorecError, match="no version '99'"):
        registry.promote(name, "99", "by hand")


def test_auto_promote_off_leaves_the_choice_to_a_person(store):
    tmp, exp = store
    name = registry.model_name("manual")
    d = registry.register_and_maybe_promote(dataset="manual", run=logged_model(exp), tags=tags(0.7),
                                            metric="macro_f1", margin=0.0, lock_path=tmp / "l.lock",
                                            score_champion_on_candidate_data=never_called,
                                            auto_promote=False)
    assert not d.promoted and "auto_promote: false" in d.reason and "no champion yet" in d.reason
    assert registry.alias_version(name) is None
    assert registry.alias_version(name, registry.CHALLENGER) == d.version


def test_rollback_without_champion(store):
    with pytest.raises(EmorecError, match="no champion"):
        registry.rollback(registry.model_name("empty"))


def test_champion_on_other_validation_data_is_rescored(store):
    tmp, exp = store
    run = logged_model(exp)
    registry.register_and_maybe_promote(dataset="toy", run=run, tags=tags(0.90, "val-OLD"), metric="macro_f1",
                                        margin=0.0, lock_path=tmp / "l", score_champion_on_candidate_data=never_called)
    seen = []

    def rescore(version):
        seen.append(str(version.version))
        return 0.40  # the old champion is weak on the new validation data

    d = registry.register_and_maybe_promote(dataset="toy", run=logged_model(exp), tags=tags(0.60, "val-NEW"),
                                            metric="macro_f1", margin=0.0, lock_path=tmp / "l",
                                            score_champion_on_candidate_data=rescore)
    assert seen == ["1"] and d.promoted and d.champion_score == 0.40


def _race(args):
    uri, lock, run, score = args
    os.environ["MLFLOW_TRACKING_URI"] = uri
    from emorec.experiments import registry as reg

    d = reg.register_and_maybe_promote(dataset="race", run=run, tags=tags(score), metric="macro_f1",
                                       margin=0.0, lock_path=lock, score_champion_on_candidate_data=never_called)
    return d.version, score


def test_concurrent_promotions_leave_exactly_one_best_champion(store):
    tmp, exp = store
    runs = [logged_model(exp) for _ in range(4)]
    scores = [0.61, 0.64, 0.58, 0.63]
    uri = os.environ["MLFLOW_TRACKING_URI"]
    with mp.get_context("spawn").Pool(4) as pool:
        results = pool.map(_race, [(uri, tmp / "race.lock", r, s) for r, s in zip(runs, scores)])
    name = registry.model_name("race")
    versions = registry.list_versions(name)
    assert len(versions) == 4
    champions = [v for v in versions if "champion" in v["aliases"]]
    assert len(champions) == 1
    best_version = max(results, key=lambda r: r[1])[0]
    assert champions[0]["version"] == best_version


def test_damaged_model_file_gives_a_clear_error(tmp_path):
    from emorec.models.loading import load_model

    folder = tmp_path / "cnn-plain"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"not a zip")
    (folder / "run.json").write_text("{}")
    with pytest.raises(EmorecError, match=r"model.keras: not a Keras .keras archive"):
        load_model(folder)
    with pytest.raises(EmorecError, match="no trained model"):
        load_model(tmp_path / "missing")


def test_registered_model_with_missing_artifacts_gives_a_clear_error(store):
    import shutil

    from emorec.inference import realtime

    tmp, exp = store
    run = logged_model(exp)
    registry.register_and_maybe_promote(dataset="gone", run=run, tags=tags(0.5), metric="macro_f1", margin=0.0,
                                        lock_path=tmp / "l", score_champion_on_candidate_data=never_called)
    shutil.rmtree(tmp / "art")  # the artifact store lost the files
    with pytest.raises(EmorecError, match="cannot load models:/emorec-gone@champion"):
        realtime.Classifier("models:/emorec-gone@champion")


def test_a_tie_from_the_champions_own_run_with_new_serving_settings_takes_champion(store):
    tmp, exp = store
    name = registry.model_name("served")
    run = logged_model(exp)
    old = {**tags(0.6), "serving_config": '{"margin": 0.15}'}
    first = registry.register_and_maybe_promote(dataset="served", run=run, tags=old, metric="macro_f1",
                                                margin=0.01, lock_path=tmp / "l", score_champion_on_candidate_data=never_called)
    same = registry.register_and_maybe_promote(dataset="served", run=run, tags=old, metric="macro_f1",
                                               margin=0.01, lock_path=tmp / "l", score_champion_on_candidate_data=never_called)
    assert not same.promoted and registry.alias_version(name) == first.version      # nothing changed
    other_run = registry.register_and_maybe_promote(
        dataset="served", run=logged_model(exp), tags={**tags(0.6), "serving_config": '{"margin": 0.0}'},
        metric="macro_f1", margin=0.01, lock_path=tmp / "l", score_champion_on_candidate_data=never_called)
    assert not other_run.promoted          # other weights must still win on validation
    repacked = registry.register_and_maybe_promote(
        dataset="served", run=run, tags={**tags(0.6), "serving_config": '{"margin": 0.0}'},
        metric="macro_f1", margin=0.01, lock_path=tmp / "l", score_champion_on_candidate_data=never_called)
    assert repacked.promoted and "re-packaged" in repacked.reason and '{"margin": 0.15}' in repacked.reason
    assert registry.alias_version(name) == repacked.version
    assert registry.repackaged("r1", None, "r1", None) is None      # no serving settings recorded: no claim
