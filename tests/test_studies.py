"""Cross-validation folds, seeds summaries, cross-dataset class mapping, Grad-CAM and the
report tables that show them."""

from __future__ import annotations

import numpy as np
import pytest

from emorec.errors import EmorecError
from emorec.evaluation import cross_dataset as transfer
from emorec.evaluation import label_shift
from emorec.reporting import tables as report
from emorec.training import studies as crossval


def test_stratified_folds_partition_and_keep_the_class_mix():
    y = np.repeat(np.arange(3), [50, 30, 20])
    folds = crossval.stratified_folds(y, 5, seed=1)
    together = np.sort(np.concatenate(folds))
    np.testing.assert_array_equal(together, np.arange(len(y)))   # disjoint and complete
    for f in folds:
        np.testing.assert_array_equal(np.bincount(y[f], minlength=3), [10, 6, 4])
    assert [list(f) for f in folds] == [list(f) for f in crossval.stratified_folds(y, 5, seed=1)]


def test_folds_refuse_too_few_images_per_class():
    with pytest.raises(EmorecError, match="fewer than 5"):
        crossval.stratified_folds(np.array([0, 0, 0, 1, 1, 1, 1, 1]), 5, 0)
    with pytest.raises(EmorecError, match="at least 2"):
        crossval.stratified_folds(np.zeros(10, int), 1, 0)


def test_inner_split_is_stratified_and_disjoint():
    y = np.repeat(np.arange(2), [40, 20])
    fit, val = crossval.inner_split(y, 0.1, 0)
    assert not set(fit) & set(val) and len(fit) + len(val) == 60
    assert list(np.bincount(y[val])) == [4, 2]


def test_summary_mean_and_sample_std():
    s = crossval.Summary([{"accuracy": 0.5, "macro_f1": 0.4}, {"accuracy": 0.7, "macro_f1": 0.4}]).to_dict()
    assert s["accuracy"]["mean"] == pytest.approx(0.6)
    assert s["accuracy"]["std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert s["macro_f1"]["std"] == 0
    assert "subsets" not in s


def test_summary_reports_a_sub_split_only_where_every_run_has_it():
    runs = [{"accuracy": 0.6, "macro_f1": 0.5, "subsets": {"PrivateTest": {"accuracy": 0.62}, "PublicTest": {"accuracy": 0.6}}},
            {"accuracy": 0.6, "macro_f1": 0.5, "subsets": {"PrivateTest": {"accuracy": 0.66}}}]
    s = crossval.Summary(runs).to_dict()
    assert list(s["subsets"]) == ["PrivateTest"]       # PublicTest is missing from one run
    assert s["subsets"]["PrivateTest"]["mean"] == pytest.approx(0.64)
    assert s["subsets"]["PrivateTest"]["std"] == pytest.approx(np.std([0.62, 0.66], ddof=1))
    assert "subsets" not in crossval.Summary([runs[0], {"accuracy": 0.5, "macro_f1": 0.4}]).to_dict()


def test_ensemble_averages_members_and_judges_itself_on_validation():
    y = np.array([0, 1, 2, 0])
    a = np.array([[.6, .4, 0], [.6, .4, 0], [0, 0, 1], [1, 0, 0]])    # wrong on the second face
    b = np.array([[.4, .6, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])     # wrong on the first face
    ids = np.array(["PrivateTest_1", "PrivateTest_2", "PublicTest_3", "PublicTest_4"])
    e = crossval.ensemble_score([{"val": a, "score": a}, {"val": b, "score": b}], y, y, ids, ["a", "b", "c"])
    assert e["members"] == 2
    # the mean is right on both faces each member gets wrong (the tie on the first goes to class 0)
    assert e["validation_accuracy"] == 1.0 and e["validation_gain"] == 0.25
    assert e["accuracy"] == 1.0 and e["subsets"]["PrivateTest"]["accuracy"] == 1.0
    same = crossval.ensemble_score([{"val": a, "score": a}] * 2, y, y, None, ["a", "b", "c"])
    assert same["validation_gain"] == 0 and same["accuracy"] == 0.75 and same["subsets"] == {}


def test_cross_dataset_keeps_shared_classes_only():
    model_classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    data_classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt"]
    labels = np.array([0, 3, 7, 7, 6])           # two contempt images have no counterpart
    probs = np.eye(7)[[0, 4, 1, 2, 6]]
    y_true, y_pred, shared = transfer.restrict(probs, labels, model_classes, data_classes)
    assert shared == tuple(model_classes)
    np.testing.assert_array_equal(y_true, [0, 3, 6])
    np.testing.assert_array_equal(y_pred, [0, 4, 6])


def test_eight_class_model_on_seven_class_data_ignores_the_extra_column():
    model_classes = ["angry", "happy", "contempt"]
    probs = np.array([[0.2, 0.1, 0.7], [0.1, 0.5, 0.4]])
    y_true, y_pred, shared = transfer.restrict(probs, np.array([0, 1]), model_classes, ["angry", "happy"])
    assert shared == ("angry", "happy")
    np.testing.assert_array_equal(y_pred, [0, 1])   # contempt's 0.7 is not a shared choice


def test_no_shared_classes_is_an_error():
    with pytest.raises(EmorecError, match="share fewer than two"):
        transfer.shared_classes(["happy"], ["sad", "happy"])


def test_centre_crop_keeps_the_middle_at_the_original_size():
    faces = np.zeros((2, 20, 20, 3), dtype=np.uint8)
    faces[:, 5:15, 5:15] = 200                      # a bright centre in a dark frame
    cropped = transfer.centre_crop(faces, 0.5)
    assert cropped.shape == faces.shape and cropped.dtype == faces.dtype
    assert cropped.min() == 200                      # only the centre is left, scaled up
    grey = transfer.centre_crop(faces[..., 0], 0.5)
    assert grey.shape == (2, 20, 20) and grey.min() == 200
    assert transfer.centre_crop(faces, 1.0) is faces
    for bad in (0, 1.5, -0.2):
        with pytest.raises(EmorecError, match="centre-crop fraction"):
            transfer.centre_crop(faces, bad)


def test_framing_is_chosen_by_the_validation_score_ties_to_the_looser_crop():
    validation = {1.0: 0.26, 0.8: 0.33, 0.7: 0.35, 0.6: 0.35}
    best, scores = transfer.choose_framing(validation.__getitem__, [0.6, 1.0, 0.7, 0.8])
    assert best == 0.7 and scores == validation
    with pytest.raises(EmorecError, match="at least one"):
        transfer.choose_framing(validation.__getitem__, [])


def test_class_mix_counts_only_the_classes_the_model_knows():
    data_classes = ["angry", "happy", "contempt"]
    mix = label_shift.class_mix(np.array([0, 0, 1, 2, 2, 2]), data_classes, ["happy", "angry", "sad"])
    np.testing.assert_allclose(mix, [1 / 3, 2 / 3, 0])      # contempt left out; sad absent from the data
    with pytest.raises(EmorecError, match="none of these labels"):
        label_shift.class_mix(np.array([2, 2]), data_classes, ["happy", "angry"])


def test_shifting_the_prior_reweighs_each_class_by_target_over_trained():
    probs = np.array([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]])
    trained = np.array([0.8, 0.2, 0.0])                      # the model saw class 0 four times as often
    same = label_shift.shift_prior(probs, trained, trained)
    np.testing.assert_allclose(same, probs)                  # the same prior changes nothing
    even = label_shift.shift_prior(probs, trained, np.array([0.5, 0.5, 0.0]))
    np.testing.assert_allclose(even.sum(axis=1), 1)
    assert even[0].argmax() == 1 and even[1].argmax() == 0   # a tie goes to the class it over-predicted less
    np.testing.assert_allclose(even[0], [0.2, 0.8, 0.0])     # 0.5 x 0.5/0.8 against 0.5 x 0.5/0.2
    with pytest.raises(EmorecError, match="do not fit"):
        label_shift.shift_prior(probs, trained[:2], trained[:2])


@pytest.mark.parametrize("class_mix", ["yes", 1, [True]])
def test_bad_class_mix_option_is_refused_before_any_model_loads(tmp_path, class_mix):
    from emorec.config import load_params
    from emorec.stages import cross_dataset as stage

    params = load_params()
    params["cross_dataset"] = [{"model": "fer2013/cnn/plain", "test": "affectnet", "class_mix": class_mix}]
    with pytest.raises(EmorecError, match="cross_dataset class_mix for fer2013/cnn/plain -> affectnet"):
        stage.run(params, tmp_path)


@pytest.mark.parametrize("framing", [[1.0, 1.4], "0.7", [0.7, True], [0]])
def test_bad_framing_option_is_refused_before_any_model_loads(tmp_path, framing):
    from emorec.config import load_params
    from emorec.stages import cross_dataset as stage

    params = load_params()
    params["cross_dataset"] = [{"model": "fer2013/cnn/plain", "test": "affectnet", "framing": framing}]
    with pytest.raises(EmorecError, match="cross_dataset framing for fer2013/cnn/plain -> affectnet"):
        stage.run(params, tmp_path)


def _face_data(n=40, size=32):
    rng = np.random.default_rng(0)
    y = np.arange(n) % 2
    x = rng.random((n, size, size, 1)).astype("float32") * 0.2
    x[y == 1, 8:16, 8:16] += 0.8      # class 1: a bright square in the upper left
    return x, y


def test_gradcam_points_at_the_evidence_in_a_flat_cnn():
    import keras

    from emorec import models
    from emorec.evaluation import gradcam as explain

    keras.utils.set_random_seed(0)
    x, y = _face_data()
    model = models.build("cnn", (32, 32, 1), 2, filters=(8, 16), dense_units=16, conv_dropout=0.0,
                         dense_dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=15, verbose=0)
    cams, probs = explain.gradcam(model, x[y == 1][:4], np.ones(4, int))
    assert cams.shape == (4, 32, 32) and cams.min() >= 0 and cams.max() <= 1
    inside = cams[:, 8:16, 8:16].mean()
    outside = cams[:, 20:, 20:].mean()
    assert inside > outside


def test_gradcam_and_feature_maps_on_a_two_part_model(tmp_path):
    from emorec import models
    from emorec.evaluation import gradcam as explain

    model = models.build("custom_mobilenet", (32, 32, 3), 3, alpha=0.25, patch_filters=8, dense_units=8)
    x = np.random.default_rng(0).random((3, 32, 32, 3)).astype("float32")
    cams, probs = explain.gradcam(model, x)
    assert cams.shape == (3, 32, 32) and probs.shape == (3, 3)
    maps = explain.feature_maps(model, x[0], "features/mobilenet_base/conv_pw_1_relu", n=4)
    assert maps.shape[0] == 4 and maps.ndim == 3
    head_maps = explain.feature_maps(model, x[0], "head/attention_reweight", n=4)
    assert head_maps.shape[0] == 4
    with pytest.raises(EmorecError, match="no layer 'features/nope'"):
        explain.feature_maps(model, x[0], "features/nope")
    explain.gradcam_figure(x, cams, ["a", "b", "c"], tmp_path / "g.png", "t")
    explain.feature_map_figure(x[0], {"head/attention_reweight": head_maps}, tmp_path / "f.png", "t")
    assert (tmp_path / "g.png").stat().st_size > 1000 and (tmp_path / "f.png").exists()


def test_pick_examples_takes_correct_and_wrong_per_class():
    y = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([0, 1, 0, 1, 1, 0])
    from emorec.evaluation import gradcam as explain

    picks = explain.pick_examples(y, pred, 1, 0)
    assert len(picks) == 4
    assert {(int(y[i]), ok) for i, ok in picks} == {(0, True), (0, False), (1, True), (1, False)}


def _row(model, balance, acc=None, skipped=None, ds="fer2013"):
    prov = {"run_name": f"{ds}-{model}-{balance}", "dataset": ds, "model": model, "balance": balance,
            "data": "fer2013 (complete)", "input": "48px", "protocol": "paper", "test_set": "x",
            "seed": 42, "epochs": 30, "epochs_run": 30, "best_epoch": 29, "weights": "scratch",
            "n_train": 100, "train_seconds": 60, "hardware": "cpu", "git_commit": "abc",
            "mlflow_run_id": "f" * 32, "max_train_images": 8000 if model == "vgg16" else None}
    if skipped:
        return {"skipped": skipped, "provenance": prov}
    return {"provenance": prov, "test": {"accuracy": acc, "macro_f1": acc - 0.1, "n": 10, "per_class": {}}}


def test_comparison_table_has_paper_columns_and_honest_gaps():
    rows = [_row("cnn", "plain", 0.6), _row("cnn", "balanced", 0.59), _row("vgg16", "plain", 0.41),
            report.skipped_row("fer2013-vgg16-balanced", "fer2013", "vgg16", "balanced",
                               "not a run of profile 'cpu'", "profile")]
    md = report.comparison_markdown(rows)
    cnn = next(line for line in md.splitlines() if line.startswith("| cnn |"))
    assert "0.600" in cnn and "0.63" in cnn and "0.62" in cnn      # ours beside the paper's IX / X
    vgg = next(line for line in md.splitlines() if line.startswith("| vgg16 |"))
    assert "full profile" in vgg and "8000 train images" in vgg and "scratch" in vgg
    assert "| densenet121 (paper only) |" in md and "## Noise over seeds" not in md
    # the commit is HEAD when evaluate ran: the column says so, and names the training run that holds
    # the training commit, rather than passing the evaluation commit off as the model's
    prov = md[md.index("## Provenance of our numbers"):]
    assert "| git commit at evaluate | MLflow training run |" in prov and "| git commit |" not in prov
    assert "| abc | ffffffff |" in prov and "not necessarily the commit that trained" in prov
    study = {"seeds": [42, 7], "hardware": "2-core cpu", "runs": [
        {"run": "fer2013-cnn-plain", "epochs": 30, "runs": [{"seed": 42, "accuracy": 0.63}, {"seed": 7, "accuracy": 0.62}],
         "accuracy": {"mean": 0.625, "std": 0.0071}, "macro_f1": {"mean": 0.6, "std": 0.001},
         "subsets": {"PrivateTest": {"mean": 0.64, "std": 0.002}}}]}
    md = report.comparison_markdown(rows, study)
    noise = md[md.index("## Noise over seeds"):md.index("## Provenance of our numbers")]
    assert "[42, 7]" in noise and "2-core cpu" in noise
    assert "| fer2013-cnn-plain | 0.6250 +- 0.0071 | 0.6000 +- 0.0010 | PrivateTest 0.6400 +- 0.0020 |" in noise


def test_missing_dataset_says_needs_data():
    rows = [_row("cnn", "plain", skipped="needs the rafdb data", ds="rafdb")]
    md = report.comparison_markdown(rows)
    assert "**Needs the rafdb data**" in md and "| custom_mobilenet | 0.81 | 0.81 |" in md


def test_study_tables():
    rec = {"name": "cv", "folds": 2, "model": "cnn", "balance": "plain", "images": 10, "dataset": "fer2013",
           "seed": 1, "epochs": 2, "hardware": "cpu", "mlflow_parent_run_id": "p" * 32,
           "runs": [{"fold": 1, "accuracy": 0.5, "macro_f1": 0.4, "n": 5, "best_epoch": 2, "epochs_run": 2,
                     "run_id": "r" * 32}] * 2,
           "accuracy": {"mean": 0.5, "std": 0.0}, "macro_f1": {"mean": 0.4, "std": 0.0}}
    md = report.crossval_markdown(rec)
    assert "0.5000 +- 0.0000" in md and "Not the same protocol" in md
    seeds = report.seeds_markdown([1, 2], [{"run": "x", "epochs": 3, "runs": [
        {"seed": 1, "accuracy": 0.5}, {"seed": 2, "accuracy": 0.7}],
        "accuracy": {"mean": 0.6, "std": 0.14}, "macro_f1": {"mean": 0.5, "std": 0.1}}])
    assert "0.6000 +- 0.1400" in seeds
    with_split = report.seeds_markdown([1, 2], [{"run": "x", "epochs": 3, "runs": [{"seed": 1, "accuracy": 0.5}],
                                                 "accuracy": {"mean": 0.6, "std": 0.14}, "macro_f1": {"mean": 0.5, "std": 0.1},
                                                 "subsets": {"PrivateTest": {"mean": 0.64, "std": 0.02}}}])
    assert "PrivateTest 0.6400 +- 0.0200" in with_split
    ens = report.seeds_table([{"run": "x", "epochs": 3, "runs": [], "accuracy": {"mean": 0.6, "std": 0.1},
                               "macro_f1": {"mean": 0.5, "std": 0.1},
                               "ensemble": {"members": 3, "validation_accuracy": 0.66, "validation_gain": 0.02,
                                            "accuracy": 0.67, "macro_f1": 0.6, "subsets": {"PrivateTest": {"accuracy": 0.68}}}}])
    assert any("3 seeds as one ensemble" in line and "+0.0200" in line and "PrivateTest 0.6800" in line for line in ens)
