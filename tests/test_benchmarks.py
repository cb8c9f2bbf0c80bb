"""The benchmark summary: targets are judged from the measured rows, never assumed."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))

import epoch_budget  # noqa: E402
import model_throughput  # noqa: E402
import paired_runs  # noqa: E402
import real_faces  # noqa: E402
import small_faces  # noqa: E402
import source_prior  # noqa: E402
import summarize  # noqa: E402
import tta_realtime  # noqa: E402

MACHINE = {"date": "2026-11-24 20:00", "cpu": "test cpu", "cores": 2, "memory_gb": 24.0, "os": "Linux",
           "python": "3.11", "packages": {"tensorflow": "2.21.0"}, "gpu": "none used"}
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
CHAMPION = "models:/emorec-fer2013@champion"


def _accuracy(who, model, acc):
    return {"who": who, "model": model, "accuracy": acc, "macro_f1": acc - 0.05, "n": 3589,
            "per_class_f1": {c: 0.5 for c in CLASSES}, "crops_per_second": 500.0}


def _fps(who, model, detector, fps, video="webcam.mp4"):
    row = {"video": video, "who": who, "model": model, "detector": detector, "fps": fps, "frames": 175,
           "faces": 137}
    if who == "emorec":
        row["ms_per_frame"] = {s: 1.0 for s in summarize.STAGES}
    return row


def _write(tmp_path, ours_fps, ours_acc, pipeline_ratio, noop_s):
    peer = {"machine": MACHINE, "target_video": "webcam.mp4",
            "accuracy": [_accuracy("fer", "-", 0.58), _accuracy("emorec", CHAMPION, ours_acc),
                         _accuracy("emorec", "models/export/fer2013/model.onnx", ours_acc)],
            "fps": [_fps("decode", "-", "-", 1800.0), _fps("fer", "-", "haar (fer default)", 30.0),
                    _fps("emorec", CHAMPION, "yunet", ours_fps),
                    _fps("emorec", "models/export/fer2013/model.onnx", "yunet", ours_fps * 1.2),
                    _fps("emorec", CHAMPION, "yunet", 5.0, video="other.mp4")]}
    pipeline = {"machine": MACHINE, "model": "cnn", "batch_size": 64, "images": 100, "epochs": 1, "repeats": 1,
                "data": "random", "rows": [
                    {"name": "plain", "images_per_second": 1000.0},
                    {"name": "ours, no aug", "images_per_second": 990.0},
                    {"name": "ours", "images_per_second": 1000.0 * pipeline_ratio, "default": True}]}
    project = {"machine": MACHINE, "where": "checkout", "status_s": 3.0, "noop_s": noop_s,
               "changed_key": "models.cnn.learning_rate", "changed_status_s": 3.0,
               "stale_after_change": ["train@fer2013-cnn-plain"], "trains_stale": ["train@fer2013-cnn-plain"],
               "other_models_stale": []}
    for name, data in (("peer_fer", peer), ("input_pipeline", pipeline), ("dvc_overhead_project", project)):
        (tmp_path / f"{name}.json").write_text(json.dumps(data))


def test_targets_met_when_the_rows_meet_them(tmp_path):
    _write(tmp_path, ours_fps=100.0, ours_acc=0.61, pipeline_ratio=0.95, noop_s=5.0)
    text, targets = summarize.build(tmp_path, "yunet", CHAMPION)
    met = {t.split(",")[0]: ok for t, _, ok in targets}
    assert all(ok in (True, None) for ok in met.values()), targets
    assert "3.3x (100.0 vs 30.0 FPS)" in text   # ratio against fer's row on the same video
    assert "0.6100 vs 0.5800" in text
    assert (tmp_path / "accuracy_vs_fps.png").stat().st_size > 10_000
    assert "test cpu" in text and "2026-11-24" in text


def test_targets_missed_are_marked(tmp_path):
    _write(tmp_path, ours_fps=80.0, ours_acc=0.55, pipeline_ratio=0.85, noop_s=12.0)
    text, targets = summarize.build(tmp_path, "yunet", CHAMPION)
    missed = [t for t, _, ok in targets if ok is False]
    assert len(missed) == 4, targets   # 3x fer, accuracy, input pipeline, no-op repro
    assert not any("30 FPS" in t for t in missed)   # 80 FPS still clears 30
    assert text.count("**no**") == 4


def _serve(ratio_at_4: float, p99_at_1: float, failed: int) -> dict:
    row = lambda c, x, p99, f=0: {"clients": c, "requests": 100, "ok": 100 - f, "failed": f, "seconds": 20.0,  # noqa: E731
                                  "per_second": 40.0 * x, "p50_ms": 20.0, "p99_ms": p99, "max_ms": 90.0,
                                  "x_in_process": x}
    return {"machine": MACHINE, "model": "model.keras", "weights_note": "test", "image": "a frame",
            "detector": "yunet", "in_process": {"per_second": 40.0, "p50_ms": 20.0, "p99_ms": 30.0, "max_ms": 40.0},
            "served": [row(1, 0.8, p99_at_1), row(4, ratio_at_4, 80.0), row(16, 0.9, 300.0, failed)],
            "soak": {"clients": 4, "requests": 1000, "ok": 1000, "failed": 0, "seconds": 300.0, "per_second": 35.0,
                     "p50_ms": 20.0, "p99_ms": 60.0, "max_ms": 90.0, "rss_mb": [[0, 500.0], [10, 510.0]],
                     "rss_first_mb": 500.0, "rss_last_mb": 510.0, "rss_max_mb": 512.0, "rss_growth_mb": 0.0}}


def test_serving_targets_are_judged_from_the_load_rows():
    lines, targets = summarize.serving_section(_serve(0.75, 45.0, 0))
    assert [ok for _, _, ok in targets] == [True, True, True]
    assert "0.75x (30.0 vs 40.0 img/s)" in targets[0][1] and any("in-process" in ln for ln in lines)
    _, targets = summarize.serving_section(_serve(0.5, 60.0, 3))
    assert [ok for _, _, ok in targets] == [False, False, False]


def test_real_faces_shares_count_every_face_and_the_large_ones_apart():
    faces = [("sad", 20), ("sad", 60), ("happy", 50), ("neutral", 47.9)]
    every = real_faces.shares(faces, CLASSES)
    assert every["n"] == 4 and every["share"]["sad"] == 0.5 and every["share"]["fear"] == 0
    large = real_faces.shares(faces, CLASSES, real_faces.LARGE)
    assert large["n"] == 2 and large["share"]["sad"] == 0.5 and large["share"]["neutral"] == 0
    assert real_faces.shares([], CLASSES)["share"]["sad"] is None    # no faces: no share, not 0
    assert "| m | 4 (2) | 0.5 | 0.5 | sad 0.50, happy 0.25, neutral 0.25 | 4 | 0.5 |" in real_faces.markdown(
        [{"model": "m", "photos": {"all": every, "large": large}, "webcam_video": {"all": every}}])


def test_real_faces_marks_face_boxes_under_a_red_overlay_and_shares_without_them():
    import numpy as np

    frame = np.full((100, 100, 3), 120, np.uint8)
    frame[10:20, 10:50] = (30, 30, 220)                      # a burned-in red name tag (BGR)
    assert real_faces.red_share(frame, (10, 10, 50, 50)) == 0.25
    assert real_faces.red_share(frame, (60, 60, 90, 90)) == 0.0
    assert real_faces.red_share(frame, (200, 200, 240, 240)) == 0.0    # outside the image
    frame[60:70, 60:90] = (60, 200, 60)                      # green is not the overlay
    assert real_faces.red_share(frame, (60, 60, 90, 90)) == 0.0
    found = [("sad", 40.0, True), ("angry", 50.0, True), ("neutral", 48.0, False), ("sad", 30.0, False)]
    e = real_faces.video_entry(real_faces.VIDEO, found, CLASSES)
    assert e["all"]["n"] == 4 and e["marked_n"] == 2 and e["median_side"] == 48.0
    assert e["unmarked"]["n"] == 2 and e["unmarked"]["share"]["neutral"] == 0.5 and e["unmarked"]["share"]["angry"] == 0
    photos = real_faces.shares([("happy", 60)], CLASSES)
    close = real_faces.video_entry(real_faces.CLOSEUP, [("neutral", 200.0, False)], CLASSES)
    text = real_faces.markdown([{"model": "m", "photos": {"all": photos, "large": photos}, "webcam_video": e,
                                 "closeup_video": close}])
    assert "| m | webcam_640x480_one_face.mp4 | 4 | 48.0 | 0.25 | 0.5 |" in text
    assert "| m | webcam_640x480_one_face.mp4 without the overlay (2 marked left out) | 2 | 48.0 | 0.5 | 0.5 |" in text
    assert "| m | closeup_436x384_one_face.mp4 | 1 | 200.0 | 1.0 | 0.0 | neutral 1.00 |" in text
    assert "closeup_436x384_one_face.mp4 without" not in text             # nothing marked: no second line
    older = real_faces.markdown([{"model": "m", "photos": {"all": photos, "large": photos},
                                  "webcam_video": {"all": e["all"]}}])
    assert "median face" not in older                                    # files written before: one table


def test_source_prior_puts_each_source_label_share_beside_the_model_belief():
    import numpy as np

    classes = ("happy", "neutral")
    labels = np.array([0, 1, 1, 1, 0, 0, 0, 1])
    sources = np.array(["a"] * 4 + ["b"] * 4)
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.9],
                      [0.7, 0.3], [0.4, 0.6], [0.8, 0.2], [0.5, 0.5]])
    out = source_prior.per_source(probs, labels, sources, classes)
    assert out["a"]["n"] == 4 and out["a"]["classes"]["happy"]["label_share"] == 0.25
    assert out["a"]["classes"]["happy"]["mean_probability"] == 0.45
    assert out["a"]["classes"]["neutral"]["recall"] == round(2 / 3, 4)
    assert out["b"]["classes"]["happy"]["recall"] == round(2 / 3, 4)
    assert out["b"]["classes"]["neutral"]["recall"] == 0.0      # argmax of [0.5, 0.5] is the first class
    text = source_prior.markdown([{"model": "m", "sources": out}])
    assert "| m | 0.250 / 0.450 / 1.0 | 0.750 / 0.600 / 0.6667 |" in text


def test_real_faces_section_appears_only_when_measured(tmp_path):
    _write(tmp_path, ours_fps=100.0, ours_acc=0.61, pipeline_ratio=0.95, noop_s=5.0)
    text, _ = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "Real faces without labels" not in text
    share = real_faces.shares([("sad", 60), ("neutral", 30)], CLASSES)
    row = {"model": "run-a", "photos": {"all": share, "large": real_faces.shares([("sad", 60)], CLASSES)},
           "webcam_video": {"all": share}}
    (tmp_path / "real_faces.json").write_text(json.dumps({"machine": MACHINE, "large_face_px": 48, "rows": [row]}))
    text, _ = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "## 7. Real faces without labels" in text and "| run-a | 2 (1) | 0.5 | 1.0 |" in text


def test_tta_section_shows_each_kind_with_its_validation_gain_and_fps(tmp_path):
    _write(tmp_path, ours_fps=100.0, ours_acc=0.61, pipeline_ratio=0.95, noop_s=5.0)
    text, _ = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "Test-time augmentation in real time" not in text
    rows = [{"tta": kind, "views": views, "validation": val, "test": 0.6, "test_PrivateTest": 0.61, "fps": fps,
             "classify_ms_per_frame": ms, "detect_ms_per_frame": 20.0} for kind, views, val, fps, ms in
            ((None, 1, 0.64, 36.0, 5.0), ("flip", 2, 0.65, 33.0, 7.5), ("ten", 10, 0.655, 20.0, 25.0))]
    result = {"model": "run-a", "detector": "yunet", "video": "webcam.mp4", "repeats": 3, "rows": rows}
    (tmp_path / "tta_realtime.json").write_text(json.dumps({"machine": MACHINE, "prepared": "data/prepared/fer2013",
                                                              "results": [result]}))
    text, _ = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "## 8. Test-time augmentation in real time" in text and "median of 3 rounds" in text
    assert "| run-a | none (1) | 0.6400 | 0.6000 | 0.6100 | 36.0 | 5.00 | 20.00 |" in text
    assert "| run-a | flip (2) | 0.6500 (+0.0100) | 0.6000 | 0.6100 | 33.0 | 7.50 | 20.00 |" in text
    assert "| run-a | ten (10) | 0.6550 (+0.0150) |" in text


def test_ensemble_section_gives_members_gain_and_sub_splits(tmp_path):
    _write(tmp_path, ours_fps=100.0, ours_acc=0.61, pipeline_ratio=0.95, noop_s=5.0)
    text, _ = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "The seeds as one ensemble" not in text
    rows = [{"tta": "none", "members": 2, "member_validation": [0.6, 0.62], "member_test": [0.6, 0.6],
             "ensemble_validation": 0.64, "ensemble_test": 0.63, "validation_gain_over_members": 0.03,
             "ensemble_test_PrivateTest": 0.65, "ensemble_test_PublicTest": 0.61}]
    (tmp_path / "seed_ensemble.json").write_text(json.dumps({
        "machine": MACHINE, "study": "fer2013-cnn-plain", "seeds": [42, 7], "run_ids": ["a", "b"],
        "prepared": "data/prepared/fer2013", "results": rows}))
    text, _ = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "## 9. The seeds as one ensemble" in text and "seeds 42, 7" in text
    assert "| none | 0.6100 | 0.6400 (+0.0300) | 0.6300 | 0.6500 | 0.6100 |" in text


def test_tta_accuracies_go_through_the_real_time_classifier(tmp_path):
    """The benchmark's accuracies are the Classifier's own predictions with each kind of TTA:
    the test split's sub-splits come from the face ids, and the kinds really differ."""
    import keras
    import numpy as np

    from emorec import files, models
    from emorec.data.preprocess import InputSpec

    keras.utils.set_random_seed(0)
    models.build("cnn", (48, 48, 1), len(CLASSES), filters=(8,), dense_units=8).save(tmp_path / "model.keras")
    files.write_json(tmp_path / "preprocessing.json", InputSpec(48, 1, CLASSES).to_dict())
    rng = np.random.default_rng(0)
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    for part, n in (("val", 30), ("test", 40)):
        ids = np.array([f"{'PrivateTest' if i % 2 else 'PublicTest'}_{i}.png" for i in range(n)])
        np.savez(prepared / f"{part}.npz", images=rng.integers(0, 255, (n, 48, 48, 1), np.uint8),
                 labels=rng.integers(0, len(CLASSES), n), classes=np.array(CLASSES), source_id=ids)
    got = {kind: tta_realtime.accuracies(str(tmp_path / "model.keras"), kind, prepared, chunk=16)
           for kind in tta_realtime.KINDS}
    assert got[None]["n_validation"] == 30 and got[None]["n_test"] == 40
    assert set(got[None]) >= {"validation", "test", "test_PrivateTest", "test_PublicTest"}
    from emorec.inference.classifier import Classifier

    x, y = files.load_npz(prepared / "val.npz")["images"], files.load_npz(prepared / "val.npz")["labels"]
    flip = Classifier(str(tmp_path / "model.keras"), tta="flip").predict_faces(list(x))
    assert got["flip"]["validation"] == round(float((flip.argmax(1) == y).mean()), 4)


def test_shrink_section_judges_the_90_fps_target_from_the_measured_rows(tmp_path):
    _write(tmp_path, ours_fps=100.0, ours_acc=0.61, pipeline_ratio=0.95, noop_s=5.0)
    text, _ = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "Real-time frames searched shrunk" not in text
    wider = {"recall": 0.9, "found": 9, "faces_min_20px": 10, "false_positives": 1, "ms_per_image": 40.0}
    labelled = {"face_px": 96, "faces": 100, "found": 90, "accuracy": 0.6, "macro_f1": 0.55}
    scale = {"machine": MACHINE, "limit": 50, "detector": "yunet", "min_face": 20, "model": "m", "videos": [],
             "rows": [{"smallest_face": None, "wider": wider, "labelled": [labelled]},
                      {"smallest_face": 10, "wider": {**wider, "ms_per_image": 10.0},
                       "labelled": [{**labelled, "found": 70, "box_iou_with_full_size": {"mean": 0.85, "p10": 0.7},
                                     "both_found": {"n": 60, "accuracy_full_size": 0.61, "accuracy_shrunk": 0.6}}]}]}
    (tmp_path / "detect_scale.json").write_text(json.dumps(scale))

    def fps_file(on, off):
        rows = [{"setting": s, "fps": f, "ms_per_frame": {"detect": d}} for s, f, d in
                (("-", on, 5.0), ("shrink_frames=false", off, 12.0))]
        (tmp_path / "shrink_fps.json").write_text(json.dumps({"machine": MACHINE, "command": "c", "runs": [
            {"video": "webcam_640x480_one_face.mp4", "repeats": 3, "rows": rows}]}))

    fps_file(124.5, 64.3)
    text, targets = summarize.build(tmp_path, "yunet", CHAMPION)
    assert "## 11. Real-time frames searched shrunk" in text
    assert "| shrunk, smallest_face 10 | 96 | 70 / 100 | 0.850 / 0.700 | 0.6000 | 0.5500 | 0.6100 / 0.6000 (60 faces) |" in text
    assert "| webcam_640x480_one_face.mp4 | 124.5 | 64.3 | 5.00 / 12.00 |" in text
    assert [t[2] for t in targets if t[0].startswith(">= 90 FPS")] == [True]
    fps_file(85.0, 60.0)
    _, targets = summarize.build(tmp_path, "yunet", CHAMPION)
    assert [t[2] for t in targets if t[0].startswith(">= 90 FPS")] == [False]


def test_prior_shift_tau_zero_keeps_the_model_and_tau_one_removes_a_learned_prior():
    import numpy as np
    import prior_shift

    prior = prior_shift.training_prior(np.array([0] * 8 + [1] * 2), 2)       # 0.8 / 0.2
    assert np.allclose(prior, [0.8, 0.2])
    # a model that learned the prior: 0.7 / 0.3 for a face it cannot tell apart
    probs = np.array([[0.7, 0.3], [0.95, 0.05]])
    same = prior_shift.adjusted(probs, np.log(prior), 0.0)
    assert np.allclose(same, probs) and np.allclose(same.sum(axis=1), 1.0)
    removed = prior_shift.adjusted(probs, np.log(prior), 1.0)
    assert removed[0].argmax() == 1                 # 0.7/0.8 < 0.3/0.2: the prior decided it
    assert removed[1].argmax() == 0                 # evidence well beyond the prior stays
    assert np.allclose(removed.sum(axis=1), 1.0)


def test_prior_shift_scores_each_source_and_the_union_and_refuses_an_empty_class():
    import numpy as np
    import prior_shift
    import pytest

    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.1, 0.9], [0.9, 0.1]])
    labels = np.array([1, 1, 1, 0])
    sources = np.array(["a", "a", "b", "b"])
    rows = prior_shift.validation_rows(probs, labels, sources, np.log([0.8, 0.2]), [0.0, 1.0], ("x", "y"))
    assert [r["tau"] for r in rows] == [0.0, 1.0]
    assert rows[0]["union"]["accuracy"] == 0.5 and rows[1]["union"]["accuracy"] == 1.0
    assert rows[0]["a"] == {"accuracy": 0.0, "macro_f1": 0.0, "n": 2} and rows[1]["a"]["accuracy"] == 1.0
    assert rows[1]["predicted_share"] == {"x": 0.25, "y": 0.75}
    with pytest.raises(SystemExit, match="no training face"):
        prior_shift.training_prior(np.array([0, 0]), 2)


class _SizeBlindOfNeutral:
    """Calls a face neutral while it still has fine detail (a sharp edge), sad once it is blurred."""
    classes = CLASSES

    def predict_faces(self, faces):
        out = np.zeros((len(faces), len(CLASSES)), np.float32)
        for i, f in enumerate(faces):
            out[i, CLASSES.index("neutral" if np.abs(np.diff(f[..., 0].astype(int), axis=1)).max() > 200
                                 else "sad")] = 1
        return out


def test_small_faces_counts_neutral_called_sad_per_size_over_the_classes_the_model_knows():
    images = np.zeros((6, 48, 48, 1), np.uint8)
    images[:, :, 1::2] = 255                        # one-pixel stripes: gone once shrunk
    data_classes = ("neutral", "sad", "contempt")    # contempt: a class the model does not know
    labels = np.array([0, 0, 0, 1, 1, 2])
    out = small_faces.labelled(_SizeBlindOfNeutral(), small_faces.at_sides(images), labels, data_classes)
    assert set(out) == {"native", "32", "24", "16"}
    native, tiny = out["native"], out["16"]
    assert native["n"] == 5 and native["neutral_recall"] == 1.0 and native["neutral_called_sad"] == 0.0
    assert native["accuracy"] == 0.6                 # 3 neutral right, 2 sad called neutral
    assert tiny["neutral_called_sad"] == 1.0 and tiny["accuracy"] == 0.4 and tiny["called_sad"] == 1.0
    shares = small_faces.unlabelled(_SizeBlindOfNeutral(), small_faces.at_sides(np.repeat(images[:2], 3, axis=-1)))
    assert shares["native"]["neutral"] == 1.0 and shares["16"]["sad"] == 1.0 and shares["16"]["n"] == 2
    text = small_faces.markdown([{"model": "m", "validation": {"d": out}, "closeup_video": shares}])
    assert "| m | d validation (5) | 0.600 / 1.00 / 0.00 |" in text and "neutral 0.00, sad 1.00 |" in text


def test_throughput_refuses_an_arch_item_without_a_key_by_name(monkeypatch, capsys):
    for bad in ("convs_per_block", "=2"):
        monkeypatch.setattr(sys, "argv", ["model_throughput.py", "--models", "cnn", "--arch", bad])
        with pytest.raises(SystemExit) as exit_info:
            model_throughput.main()
        assert exit_info.value.code == 2 and f"--arch: override '{bad}'" in capsys.readouterr().err


def test_paired_runs_counts_the_faces_only_one_model_gets_right():
    # 10 faces only a gets right, 2 only b, 8 both, 4 neither: exact McNemar p = 2 * P(X <= 2), X ~ Bin(12, 1/2)
    a = np.array([1] * 10 + [0] * 2 + [1] * 8 + [0] * 4, bool)
    b = np.array([0] * 10 + [1] * 2 + [1] * 8 + [0] * 4, bool)
    r = paired_runs.paired(a, b)
    assert (r["only_a_right"], r["only_b_right"], r["n"]) == (10, 2, 24)
    assert r["accuracy_a"] == round(18 / 24, 4) and r["accuracy_b"] == round(10 / 24, 4)
    assert r["mcnemar_exact_p"] == pytest.approx(2 * (1 + 12 + 66) / 2 ** 12, abs=1e-4)
    assert paired_runs.paired(a, a)["mcnemar_exact_p"] == 1.0          # no disagreement: no evidence
    with pytest.raises(ValueError, match="different faces"):
        paired_runs.paired(a, b[:-1])


def test_paired_runs_splits_fer2013_test_into_its_official_halves():
    ids = np.array(["test/sad/PublicTest_1.jpg", "test/sad/PrivateTest_2.jpg", "test/sad/PrivateTest_3.jpg"])
    labels = np.array([4, 4, 4])
    result = paired_runs.compare(np.array([4, 4, 0]), np.array([4, 0, 4]), labels, ids)
    assert set(result) == {"test", "PublicTest", "PrivateTest"}
    assert result["PublicTest"]["n"] == 1 and result["PrivateTest"]["n"] == 2
    assert (result["PrivateTest"]["only_a_right"], result["PrivateTest"]["only_b_right"]) == (1, 1)
    assert result["test"]["same_top1"] == round(1 / 3, 4)
    assert set(paired_runs.compare(np.array([4]), np.array([4]), np.array([4]), None)) == {"test"}


def _tiny_model(folder, bias_class, classes=CLASSES):
    """A .keras file that always answers `bias_class`, with preprocessing.json beside it."""
    import keras

    folder.mkdir()
    bias = np.full(len(classes), -5.0, np.float32)
    bias[bias_class] = 5.0
    model = keras.Sequential([keras.Input((48, 48, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(len(classes), activation="softmax", kernel_initializer="zeros",
                                                 bias_initializer=keras.initializers.Constant(bias))])
    model.save(folder / "model.keras")
    (folder / "preprocessing.json").write_text(json.dumps(
        {"size": 48, "channels": 1, "classes": list(classes), "scale": "divide_by_255"}))
    return folder / "model.keras"


def test_paired_runs_end_to_end_and_its_refusals(tmp_path, capsys):
    prepared = tmp_path / "prepared"
    prepared.mkdir()
    rng = np.random.default_rng(0)
    labels = np.array([3] * 6 + [4] * 4)
    ids = np.array([f"test/x/{'PublicTest' if i < 5 else 'PrivateTest'}_{i}.jpg" for i in range(10)])
    np.savez(prepared / "test.npz", images=rng.integers(0, 256, (10, 48, 48, 1), dtype=np.uint8), labels=labels,
             source_id=ids, classes=np.array(CLASSES))
    happy, sad = _tiny_model(tmp_path / "happy", 3), _tiny_model(tmp_path / "sad", 4)
    out = tmp_path / "paired.json"
    assert paired_runs.main(["--model", str(happy), "--model", str(sad), "--prepared", str(prepared),
                             "--out", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert saved["splits"]["test"]["only_a_right"] == 6 and saved["splits"]["test"]["only_b_right"] == 4
    assert saved["splits"]["PublicTest"]["n"] == 5 and "machine" in saved
    assert "| PrivateTest | 5 |" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="exactly two models"):
        paired_runs.main(["--model", str(happy), "--prepared", str(prepared), "--out", str(out)])
    (tmp_path / "sad" / "preprocessing.json").unlink()
    with pytest.raises(SystemExit, match="preprocessing.json beside it"):
        paired_runs.main(["--model", str(happy), "--model", str(sad), "--prepared", str(prepared), "--out", str(out)])
    other = _tiny_model(tmp_path / "other", 0, classes=CLASSES[:6])
    with pytest.raises(SystemExit, match="are not the data's"):
        paired_runs.main(["--model", str(happy), "--model", str(other), "--prepared", str(prepared), "--out", str(out)])
    with pytest.raises(SystemExit, match="no test.npz"):
        paired_runs.main(["--model", str(happy), "--model", str(sad), "--prepared", str(tmp_path)])


def test_epoch_budget_charges_every_point_one_measured_epoch(tmp_path):
    row = {"name": "cpu-10ep", "epochs_run": 10, "val_accuracy": 0.62461, "epoch_seconds": [60] + [45] * 8 + [300],
           "scored": {"test": {"accuracy": 0.62}, "subsets": {"PrivateTest": {"accuracy": 0.63}}}}
    point = epoch_budget.recipe_point(row)
    assert point["epoch_seconds_median"] == 45 and point["validation"] == 0.6246 and point["private_test"] == 0.63
    with pytest.raises(SystemExit, match="not scored"):
        epoch_budget.recipe_point({k: v for k, v in row.items() if k != "scored"})
    slow = epoch_budget.recipe_point({**row, "name": "cpu-20ep", "epochs_run": 20, "epoch_seconds": [90] * 20})
    assert epoch_budget.charge([point, slow]) == 67.5                 # no pipeline run: the median of medians
    assert point["minutes"] == 11.2 and slow["minutes"] == 22.5       # the same cost an epoch for both
    folder = tmp_path / "pipeline"
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"epochs_run": 30, "train_seconds": 1500}))
    (folder / "evaluation.json").write_text(json.dumps({"validation": {"accuracy": 0.6445}, "test": {"accuracy": 0.64489},
                                                        "subsets": {"PrivateTest": {"accuracy": 0.649}}}))
    own = epoch_budget.pipeline_point(folder)
    assert own["test"] == 0.6449 and own["private_test"] == 0.649
    assert epoch_budget.charge([point, slow, own]) == 50.0            # the pipeline run's mean epoch wins
    assert (point["minutes"], slow["minutes"], own["minutes"]) == (8.3, 16.7, 25.0)
