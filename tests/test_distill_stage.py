"""The `distill` stage's checks before any training: its settings, its teacher's members (read
from the seeds study's record, never trusted), the results.md section, and the candidate it
offers `register`. The stage end to end on real faces: tests/test_pipeline_smoke.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from emorec.config import Paths
from emorec.errors import EmorecError
from emorec.stages import distill, distill_summary
from emorec.stages import register as register_stage

REPO = Path(__file__).resolve().parents[1]


def committed_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("key, value, message", [
    ("weight", 0, "distill.weight must be a number in \\(0, 1\\]"),
    ("weight", 1.5, "distill.weight"),
    ("weight", True, "distill.weight"),
    ("teacher_tta", "mirror", "distill.teacher_tta must be null, flip or ten"),
    ("epochs", 0, "distill.epochs must be an integer >= 1"),
    ("epochs", "60", "distill.epochs"),
    ("early_stopping_patience", 0, "distill.early_stopping_patience"),
    ("temperature", 2.0, "unknown key"),
])
def test_settings_name_the_bad_key(key, value, message):
    params = committed_params()
    params["distill"][key] = value
    with pytest.raises(EmorecError, match=message):
        distill.settings(params)


def test_committed_settings_pass_and_the_student_is_the_seeds_studys_run():
    params = committed_params()
    cfg = distill.settings(params)
    assert 0 < cfg["weight"] <= 1 and cfg["epochs"] >= 1
    assert distill.student_of(params) == (params["seeds"]["dataset"], params["seeds"]["model"],
                                          params["seeds"].get("balance", "plain"))
    assert distill.model_dir(Paths(REPO), params) == REPO / "models" / params["seeds"]["dataset"] / \
        f"{params['seeds']['model']}-distilled"


def seeds_record(root: Path, runs: list[dict] | None = None, skipped: str | None = None) -> None:
    record = {"run": "fer2013-cnn-plain", **({"skipped": skipped} if skipped else {"runs": runs})}
    (root / "reports" / "seeds").mkdir(parents=True, exist_ok=True)
    (root / "reports" / "seeds" / "seeds.json").write_text(json.dumps({"seeds": [42, 7], "runs": [record]}))


def test_teacher_members_come_from_the_seeds_record(tmp_path):
    params = committed_params()
    params["seeds"].update({"dataset": "fer2013", "model": "cnn", "balance": "plain"})
    paths = Paths(tmp_path)
    with pytest.raises(EmorecError, match="seeds.json: missing; the teacher is the seeds study"):
        distill.teacher_members(paths, params)
    seeds_record(tmp_path, [{"seed": 42, "source": "grid run", "run_id": "a" * 32},
                            {"seed": 7, "source": "seeds stage", "run_id": "b" * 32}])
    assert distill.teacher_members(paths, params) == [
        str(tmp_path / "models" / "fer2013" / "cnn-plain" / "model.keras"), f"runs:/{'b' * 32}/model"]
    seeds_record(tmp_path, skipped="needs data")
    with pytest.raises(EmorecError, match="has no members \\(needs data\\)"):
        distill.teacher_members(paths, params)
    seeds_record(tmp_path, [{"seed": 42, "source": "grid run"}])
    with pytest.raises(EmorecError, match="at least two members"):
        distill.teacher_members(paths, params)
    seeds_record(tmp_path, [{"seed": 42, "source": "grid run"}, {"seed": 7, "source": "seeds stage"}])
    with pytest.raises(EmorecError, match="seed 7 has neither"):
        distill.teacher_members(paths, params)


def record(tta: bool = True) -> dict:
    out = {
        "provenance": {"model": "cnn", "run_name": "fer2013-cnn-distilled", "seed": 42, "epochs": 60,
                       "epochs_run": 60, "best_epoch": 57, "train_seconds": 2700.0, "hardware": "x86_64 CPU, 2 cores"},
        "teacher": {"members": ["a", "b", "c"], "views": "flip", "weight": 0.5, "validation_accuracy": 0.6619,
                    "member_validation_accuracy": [0.6404, 0.6399, 0.6412]},
        "test": {"accuracy": 0.6517, "macro_f1": 0.625}, "validation": {"accuracy": 0.6601, "macro_f1": 0.641},
        "calibration": {"temperature": 1.21, "ece": {"test_raw": 0.035, "test_scaled": 0.017}},
        "subsets": {"PrivateTest": {"accuracy": 0.6609}, "PublicTest": {"accuracy": 0.6425}},
    }
    if tta:
        out["tta"] = {"views": "ten", "accuracy": 0.6645, "validation_gain": 0.0125,
                      "subsets": {"PrivateTest": {"accuracy": 0.674}}}
    return out


def test_results_section_shows_the_students_figures_and_its_teacher():
    text = "\n".join(distill_summary.section(record()))
    assert text.startswith("## Distilled from the seeds ensemble")
    assert "0.5 x its label + 0.5 x the mean probabilities of the seeds study's 3 members" in text
    assert "60 of 60 epochs (best 57), 45.0 min" in text
    assert ("| fer2013-cnn-distilled | 0.6601 / 0.6410 | 0.6517 | 0.6250 | PrivateTest 0.6609, PublicTest 0.6425 "
            "| ten: 0.6645, PrivateTest 0.6740 (+1.2) | 0.035 -> 0.017 (1.21) |") in text
    assert "| - | 0.035" in "\n".join(distill_summary.section(record(tta=False)))
    assert distill_summary.markdown(record()).startswith("# Distilled from the seeds ensemble")


def test_register_offers_the_student_to_its_own_dataset_only(tmp_path):
    params = committed_params()
    params["seeds"].update({"dataset": "fer2013", "model": "cnn", "balance": "plain"})
    paths = Paths(tmp_path)
    assert register_stage.distilled_candidates(params, paths, "affectnet_pca") == []
    with pytest.raises(EmorecError, match="distill.json: missing; run the distill stage before register"):
        register_stage.distilled_candidates(params, paths, "fer2013")
    folder = distill.model_dir(paths, params)
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"val_metrics": {"macro_f1": 0.64}}))
    distill.record_path(paths).parent.mkdir(parents=True)
    distill.record_path(paths).write_text(json.dumps(record()))
    [(meta, evaluation, model, tag)] = register_stage.distilled_candidates(params, paths, "fer2013")
    assert meta["val_metrics"]["macro_f1"] == 0.64 and evaluation["provenance"]["run_name"] == "fer2013-cnn-distilled"
    assert (model, tag) == ("cnn", "distilled")
    assert paths.model_dir("fer2013", model, tag) == folder     # the registry and exports find its folder
    skipped = {"run": "fer2013-cnn-distilled", "skipped": "needs the fer2013 data"}
    distill.record_path(paths).write_text(json.dumps(skipped))     # no student: nothing to offer
    assert register_stage.distilled_candidates(params, paths, "fer2013") == []
    assert "| fer2013-cnn-distilled | needs data: needs the fer2013 data |" in distill_summary.markdown(skipped)
