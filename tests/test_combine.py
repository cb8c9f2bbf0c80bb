"""The combined dataset: several prepared datasets in one vocabulary and input format,
each source's own validation and test faces still told apart."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from emorec import files, grid, runs
from emorec.data.combine import CombineConfig, source_of
from emorec.data.framing import crop_centre, framing_from_params
from emorec.errors import EmorecError
from emorec.evaluation import scoring
from emorec.stages import combine

REPO = Path(__file__).resolve().parents[1]
FER = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
AFFECT = ("angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise")


def _prepared(folder: Path, classes, size, channels, n=16, prefix="x"):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(len(classes))
    for part in ("train", "train_balanced", "val", "test"):
        y = np.arange(n) % len(classes)
        x = rng.integers(0, 255, (n, size, size, channels)).astype(np.uint8)
        ids = np.array([f"{part}/{classes[c]}/{prefix}{'PrivateTest_' if i % 2 else ''}{i}.jpg"
                        for i, c in enumerate(y)])
        np.savez(folder / f"{part}.npz", images=x, labels=y, classes=np.array(classes), source_id=ids)


@pytest.fixture
def project(tmp_path):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    _prepared(tmp_path / "data" / "prepared" / "fer2013", FER, 48, 1)
    _prepared(tmp_path / "data" / "prepared" / "affectnet", AFFECT, 96, 3)
    (tmp_path / "data" / "prepared" / "rafdb").mkdir(parents=True)
    files.write_json(tmp_path / "data" / "prepared" / "rafdb" / "missing.json", {"reason": "needs the rafdb data"})
    return tmp_path, params


def test_combine_maps_labels_formats_and_keeps_sources_apart(project):
    root, params = project
    out = combine.run(params, root)
    test = files.load_npz(out / "test.npz")
    assert tuple(test["classes"]) == FER
    assert test["images"].shape[1:] == (48, 48, 1) and test["images"].dtype == np.uint8
    sources = source_of(test["source_id"])
    assert set(sources) == {"fer2013", "affectnet"}
    # AffectNet's contempt faces (2 of its 16) are dropped; every other face keeps its class
    assert (sources == "affectnet").sum() == 14 and (sources == "fer2013").sum() == 16
    aff = files.load_npz(root / "data" / "prepared" / "affectnet" / "test.npz")
    kept = [str(c) for c in aff["classes"][aff["labels"]] if c != "contempt"]
    assert [FER[k] for k in test["labels"][sources == "affectnet"]] == kept
    report = files.read_json(root / "reports" / "combine.json")
    assert report["left_out"] == {"rafdb": "needs the rafdb data"}
    assert report["counts"]["val"]["affectnet"]["angry"] == 2

    probs = np.eye(7)[test["labels"]]
    subsets = scoring.subsets(probs, test["labels"], test["source_id"], FER)
    assert subsets["fer2013"]["n"] == 16 and subsets["affectnet"]["n"] == 14
    assert subsets["PrivateTest"]["n"] == 8 + 6     # official sub-splits still read from the ids (contempt: 2 odd ids)


def test_combine_with_one_source_left_says_why(project):
    root, params = project
    (root / "data" / "prepared" / "affectnet" / "train.npz").unlink()
    out = combine.run(params, root)
    assert "at least two prepared sources" in files.read_json(out / "missing.json")["reason"]
    assert "skipped" in files.read_json(root / "reports" / "combine.json")


def test_combine_settings_are_checked():
    with pytest.raises(EmorecError, match="not in the vocabulary"):
        CombineConfig.from_params({"name": "c", "sources": ["a", "b"], "classes": ["joy"], "size": 48, "channels": 1})
    with pytest.raises(EmorecError, match="at least two"):
        CombineConfig.from_params({"name": "c", "sources": ["a"], "classes": ["sad"], "size": 48, "channels": 1})


def _framed_faces(folder: Path, size: int, border: int):
    """Every face a bright square on a black border `border` px wide: what survives a crop."""
    for part in ("train", "train_balanced", "val", "test"):
        data = dict(np.load(folder / f"{part}.npz"))
        x = np.zeros_like(data["images"])
        x[:, border:size - border, border:size - border] = 200
        np.savez(folder / f"{part}.npz", **{**data, "images": x})


def test_framing_crops_one_source_before_resizing_and_says_so(project):
    root, params = project
    _framed_faces(root / "data" / "prepared" / "affectnet", 96, 24)   # the middle half is the face
    _framed_faces(root / "data" / "prepared" / "fer2013", 48, 12)
    as_stored = {**params, "combine": {**params["combine"], "framing": {}}}
    test = files.load_npz(combine.run(as_stored, root) / "test.npz")
    affect = test["images"][source_of(test["source_id"]) == "affectnet"]
    assert affect[:, 0, 0].max() == 0 and affect[:, 24, 24].min() == 200      # border kept
    framed = {**params, "combine": {**params["combine"], "framing": {"affectnet": 0.5}}}
    test = files.load_npz(combine.run(framed, root) / "test.npz")
    sources = source_of(test["source_id"])
    affect, fer = test["images"][sources == "affectnet"], test["images"][sources == "fer2013"]
    assert affect.shape[1:] == (48, 48, 1) and affect.min() == 200          # the central half, filling 48 px
    assert fer[:, 0, 0].max() == 0 and fer[:, 24, 24].min() == 200          # the other source untouched
    assert files.read_json(root / "reports" / "combine.json")["framing"] == {"affectnet": 0.5}


def test_crop_centre_keeps_the_middle_at_its_own_resolution():
    faces = np.arange(2 * 10 * 10, dtype=np.uint8).reshape(2, 10, 10, 1)
    assert crop_centre(faces, 1.0) is faces
    middle = crop_centre(faces, 0.6)
    assert middle.shape == (2, 6, 6, 1) and (middle == faces[:, 2:8, 2:8]).all()


def test_framing_settings_are_checked():
    base = {"name": "c", "sources": ["fer2013", "affectnet"], "classes": ["sad"], "size": 48, "channels": 1}
    assert framing_from_params({**base, "framing": {"affectnet": 0.65}}) == {"affectnet": 0.65}
    assert framing_from_params(base) == {}
    for bad, message in (({"rafdb": 0.8}, r"combine.framing.rafdb: 'rafdb' is not one of combine.sources"),
                         ({"affectnet": 0}, r"combine.framing.affectnet must be a fraction in \(0, 1\]"),
                         ({"affectnet": 1.2}, r"combine.framing.affectnet must be a fraction"),
                         ({"affectnet": True}, r"combine.framing.affectnet must be a fraction"),
                         ({"affectnet": "0.65"}, r"combine.framing.affectnet must be a fraction"),
                         ([0.65], r"combine.framing must map a source")):
        with pytest.raises(EmorecError, match=message):
            framing_from_params({**base, "framing": bad})


def test_the_combined_dataset_is_a_grid_dataset():
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert grid.is_combined(params, "combined") and grid.base_dataset(params, "combined") == "combined"
    grid.check_names(params, "combined", "cnn", "plain")
    cells = grid.cells(params, "cpu")
    assert grid.Run("combined", "cnn", "plain") in cells
    assert grid.Run("combined", "cnn", "balanced") not in cells        # per-dataset cells of the cnn
    assert grid.Run("fer2013", "cnn", "balanced") in cells
    assert runs.missing_data(params, "combined", REPO) is None
    assert grid.protocol_for(params, "combined") == "per source"


def test_infer_model_auto_reads_the_choice_and_says_what_is_missing(tmp_path):
    from emorec.config import DEFAULT_MODEL_FILE, resolve_model

    assert resolve_model("models:/emorec-fer2013@champion", tmp_path) == "models:/emorec-fer2013@champion"
    with pytest.raises(EmorecError, match="dvc repro choose"):
        resolve_model("auto", tmp_path)
    files.write_json(tmp_path / DEFAULT_MODEL_FILE, {"model": "models:/emorec-combined@champion"})
    assert resolve_model("auto", tmp_path) == "models:/emorec-combined@champion"
