"""Face detectors (all four backends) and the real-time loop, including bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import SHARED, needs_shared

from emorec.errors import EmorecError
from emorec.evaluation import detectors as detector_eval
from emorec.inference import detectors, realtime
from emorec.recognizer import EmotionRecognizer

WEIGHTS = SHARED / "weights"
WIDER = SHARED / "media" / "wider_val"
VIDEO = SHARED / "media" / "videos" / "webcam_640x480_one_face.mp4"
PHOTO = "12--Group/12_Group_Large_Group_12_Group_Large_Group_12_575.jpg"  # 9 faces


def test_retinaface_priors_and_decoding():
    priors = detectors.retinaface_priors(640)
    assert priors.shape == (16800, 4)
    np.testing.assert_allclose(priors[0], [4 / 640, 4 / 640, 16 / 640, 16 / 640])
    raw = np.zeros((2, 16), np.float32)
    raw[:, 5] = 5.0  # face logit
    boxes, scores, marks = detectors.decode_retinaface(raw, priors[:2])
    np.testing.assert_allclose(boxes[0], [-4 / 640, -4 / 640, 12 / 640, 12 / 640], atol=1e-6)
    assert scores[0] == pytest.approx(1 / (1 + np.exp(-5)), rel=1e-5)
    np.testing.assert_allclose(marks[0], np.tile(priors[0, :2], (5, 1)), atol=1e-7)


def test_iou_matching():
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], float)
    det = np.array([[1, 1, 10, 10], [50, 50, 60, 60]], float)
    gt_hit, det_hit = detector_eval.match(gt, det, 0.5)
    assert gt_hit.tolist() == [True, False] and det_hit.tolist() == [True, False]


@pytest.mark.integration
@needs_shared(WIDER)
@pytest.mark.parametrize("name,settings,min_found", [
    ("haar", {}, 3),
    ("yunet", {"weights": str(WEIGHTS / "face_detection_yunet.onnx")}, 7),
    ("retinaface-mobilenet", {"weights": str(WEIGHTS / "retinaface_mobilenet0.25.onnx")}, 7),
])
def test_detectors_find_real_faces(name, settings, min_found):
    det = detectors.create(name, settings)
    frame = cv2.imread(str(WIDER / "images" / PHOTO))
    faces = det.detect(frame)
    truth = detector_eval.read_wider_ground_truth(WIDER / "ground_truth_xywh.txt")[PHOTO]
    gt = np.hstack([truth[:, :2], truth[:, :2] + truth[:, 2:]])
    gt_hit, det_hit = detector_eval.match(gt, np.array([f.box for f in faces]).reshape(-1, 4))
    assert gt_hit.sum() >= min_found
    if name != "haar":
        assert all(f.landmarks is not None and f.landmarks.shape == (5, 2) for f in faces)


class _Records:
    """A fake detector that records the size of what it searched, with one face a quarter in."""

    def __init__(self, smallest_face=None):
        self.seen, self.smallest_face = [], smallest_face

    def detect(self, frame):
        self.seen.append(frame.shape[:2])
        h, w = frame.shape[:2]
        return [detectors.Face(np.array([w / 4, h / 4, w / 2, h / 2], float), 0.9, np.full((5, 2), w / 4))]


@pytest.mark.parametrize("smallest,min_face,max_side,expected", [
    (10, 20, 1920, 0.5),        # a 20 px face searched at 10 px
    (10, 40, 1920, 0.25),
    (10, 8, 1920, 1.0),         # faces smaller than the detector finds: never enlarged
    (10, 20, 160, 0.25),        # the long-side cap wins when it shrinks more
    (None, 20, 1920, 1.0),      # no smallest face declared (or a photo): full size
    (10, 0, None, 1.0),
])
def test_search_scale_shrinks_until_the_smallest_classified_face_is_the_detectors_smallest(
        smallest, min_face, max_side, expected):
    assert detectors.search_scale(480, 640, max_side, min_face, smallest) == pytest.approx(expected)


def test_real_time_frames_are_searched_shrunk_and_photos_at_full_size():
    from emorec.inference.classifier import Classifier

    det = _Records(smallest_face=10)
    rec = EmotionRecognizer.from_parts(det, Classifier.__new__(Classifier), min_face=20)
    faces = rec.detect(np.zeros((480, 640, 3), np.uint8), shrink=True)
    assert det.seen == [(240, 320)]
    np.testing.assert_allclose(faces[0].box, [160, 120, 320, 240])
    np.testing.assert_allclose(faces[0].landmarks, np.full((5, 2), 160))
    rec.detect(np.zeros((480, 640, 3), np.uint8))                  # a photo
    assert det.seen[-1] == (480, 640)
    rec.min_face = 10                                              # as small as the detector finds
    rec.detect(np.zeros((480, 640, 3), np.uint8), shrink=True)
    assert det.seen[-1] == (480, 640)


def test_the_loop_shrinks_frames_unless_told_not_to(tmp_path):
    from emorec.inference.classifier import Classifier

    class Uniform(Classifier):
        classes = ("a", "b")

        def __init__(self):
            pass

        def predict_faces(self, crops):
            return np.full((len(crops), 2), 0.5, np.float32)

    from emorec.inference.media import Source

    for shrink, seen in ((True, (240, 320)), (False, (480, 640))):
        det = _Records(smallest_face=10)
        frames = Source(iter([(i, i / 30, np.zeros((480, 640, 3), np.uint8)) for i in range(3)]),
                        30.0, (640, 480), 3, "video")
        realtime.run(frames, EmotionRecognizer.from_parts(det, Uniform(), min_face=20),
                     realtime.InferConfig(shrink_frames=shrink, threaded_io=False), tmp_path / str(shrink),
                     progress=False)
        assert det.seen == [seen] * 3


@pytest.mark.parametrize("value", [0, 3, 2.5, "10", True])
def test_a_bad_yunet_smallest_face_is_named(value):
    with pytest.raises(EmorecError, match=r"detectors\.yunet\.smallest_face must be null or an integer"):
        detectors.create("yunet", {"weights": "unused.onnx", "smallest_face": value})


@pytest.mark.integration
@needs_shared(VIDEO)
def test_yunet_finds_the_webcam_face_as_well_in_a_half_size_frame():
    det = detectors.create("yunet", {"weights": str(WEIGHTS / "face_detection_yunet.onnx")})
    assert det.smallest_face == 10
    cap = cv2.VideoCapture(str(VIDEO))
    full_found = shrunk_found = 0
    ious = []
    for i in range(120):
        ok, frame = cap.read()
        if not ok:
            break
        if i % 4:
            continue
        full = [f for f in det.detect(frame) if f.size >= 20]
        shrunk = [f for f in detectors.Shrunk(det, 20).detect(frame) if f.size >= 20]
        full_found, shrunk_found = full_found + len(full), shrunk_found + len(shrunk)
        if full and shrunk and full[0].size >= 30:   # smaller boxes move more between the two
            from emorec.inference.boxes import iou_matrix

            ious.append(iou_matrix(np.array([full[0].box]), np.array([s.box for s in shrunk])).max())
    assert full_found >= 10 and shrunk_found >= full_found - 1
    assert len(ious) >= 8 and np.mean(ious) > 0.8 and min(ious) >= 0.5   # each still the same face (IoU >= 0.5)


def test_retinaface_resnet_offline_path_names_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPFACE_HOME", str(tmp_path))
    with pytest.raises(detectors.WeightsError, match=r"\.deepface/weights/retinaface\.h5 not found.*place"):
        detectors.create("retinaface", {"allow_download": False})


def test_missing_or_damaged_weights(tmp_path):
    with pytest.raises(detectors.WeightsError, match=r"nope\.onnx not found; place the file there \(download it from"):
        detectors.create("yunet", {"weights": str(tmp_path / "nope.onnx"), "url": "https://example.invalid/y.onnx"})
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    with pytest.raises(detectors.WeightsError, match="bad.onnx"):
        detectors.create("yunet", {"weights": str(bad)})
    with pytest.raises(detectors.WeightsError, match="bad.onnx"):
        detectors.create("retinaface-mobilenet", {"weights": str(bad)})
    with pytest.raises(detectors.WeightsError, match="damaged or a different release"):
        detectors.create("yunet", {"weights": str(bad), "sha256": "0" * 64})
    with pytest.raises(EmorecError, match="unknown detector"):
        detectors.create("mtcnn", {})


def test_tracker_keeps_ids_and_smooths():
    tracker = realtime.Tracker(iou_threshold=0.3, ema=0.5, max_missed=1)
    a = np.array([[0, 0, 10, 10]], float)
    t1 = tracker.update(0, a, np.array([[1.0, 0.0]]), [None])
    t2 = tracker.update(1, a + 1, np.array([[0.0, 1.0]]), [None])
    assert t1[0].track_id == t2[0].track_id == 1
    np.testing.assert_allclose(t2[0].probs, [0.5, 0.5])
    far = tracker.update(2, a + 100, np.array([[0.0, 1.0]]), [None])
    assert far[0].track_id == 2


class FakeDetector:
    def __init__(self, faces):
        self.faces = faces

    def detect(self, frame):
        return self.faces


class FakeClassifier:
    classes = ("happy", "sad")

    def __init__(self):
        self.batches = []

    def predict_faces(self, crops):
        self.batches.append(len(crops))
        return np.tile(np.array([[0.8, 0.2]], np.float32), (len(crops), 1))


def frames(n, bad_at=()):
    for i in range(n):
        yield i, i / 10, None if i in bad_at else np.full((120, 160, 3), 90, np.uint8)


def test_loop_batches_faces_skips_bad_frames_and_tiny_faces(tmp_path):
    big = [detectors.Face(np.array([10, 10, 60, 60], float), 0.9),
           detectors.Face(np.array([80, 10, 130, 60], float), 0.9),
           detectors.Face(np.array([5, 90, 12, 97], float), 0.9)]  # 7 px: below min_face
    clf = FakeClassifier()
    source = realtime.Source(frames(6, bad_at={3}), 10.0, (160, 120), 6, "video")
    summary = realtime.run(source, EmotionRecognizer.from_parts(FakeDetector(big), clf, min_face=20),
                           realtime.InferConfig(), tmp_path,
                           progress=False)
    assert summary["frames"] == 5 and summary["undecodable_frames"] == 1
    assert clf.batches == [2] * 5  # one batch per frame, tiny face left out
    assert summary["tracks"] == 2
    lines = (tmp_path / "frames.jsonl").read_text().splitlines()
    assert len(lines) == 10 and '"probabilities": {"happy": 0.8' in lines[0]
    for name in ("video.mp4", "summary.json", "timeline.png", "timelines/track_0001.png",
                 "timelines/track_0002.png"):
        assert (tmp_path / name).exists(), name


def test_video_with_no_faces_runs_to_the_end(tmp_path):
    source = realtime.Source(frames(4), 10.0, (160, 120), 4, "video")
    summary = realtime.run(source, EmotionRecognizer.from_parts(FakeDetector([]), FakeClassifier()),
                           realtime.InferConfig(), tmp_path,
                           progress=False)
    assert summary["frames"] == 4 and summary["tracks"] == 0 and summary["faces_classified"] == 0


def test_bad_sources(tmp_path):
    with pytest.raises(EmorecError, match="not found"):
        realtime.open_source(str(tmp_path / "missing.mp4"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(EmorecError, match="cannot read video"):
        realtime.open_source(str(junk))
    with pytest.raises(EmorecError, match="camera 7 cannot be opened"):
        realtime.open_source("7")
    (tmp_path / "empty").mkdir()   # folders are photos, read by the photo path
    from emorec.inference import photos

    with pytest.raises(EmorecError, match="holds no images"):
        photos.photo_paths(str(tmp_path / "empty"))


def test_crop_is_square_padded_and_rgb():
    frame = np.zeros((50, 50, 3), np.uint8)
    frame[..., 0] = 255  # blue in BGR
    crop = realtime.crop_face(frame, np.array([30, 30, 60, 60], float), margin=0.2)
    assert crop.shape[0] == crop.shape[1] == 42
    assert crop[0, 0, 2] == 255 and crop[0, 0, 0] == 0  # converted to RGB


def _tiny_model_file(folder: Path) -> Path:
    import keras

    from emorec import files, models
    from emorec.data.preprocess import InputSpec
    from emorec.labels import BASIC_EMOTIONS

    keras.utils.set_random_seed(0)
    folder.mkdir(parents=True)
    model = models.build("cnn", (48, 48, 1), 7, filters=(8, 16), dense_units=16)
    model.save(folder / "model.keras")
    files.write_json(folder / "run.json", {"input_spec": InputSpec(48, 1, BASIC_EMOTIONS).to_dict()})
    return folder / "model.keras"


@pytest.mark.integration
@needs_shared(VIDEO)
def test_real_video_end_to_end_with_a_local_model(tmp_path):
    clf = realtime.Classifier(str(_tiny_model_file(tmp_path / "m")))
    det = detectors.create("yunet", {"weights": str(WEIGHTS / "face_detection_yunet.onnx")})
    summary = realtime.run(realtime.open_source(str(VIDEO)), EmotionRecognizer.from_parts(det, clf),
                           realtime.InferConfig(max_frames=60, detect_every=2), tmp_path / "out", progress=False)
    assert summary["frames"] == 60 and summary["tracks"] >= 1
    assert summary["faces_classified"] >= 30  # the face is below 20 px for the first ~20 frames
    assert set(summary["ms_per_frame"]) == {"decode", "detect", "preprocess", "classify", "draw", "encode"}
    cap = cv2.VideoCapture(str(tmp_path / "out" / "video.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 60


def test_model_file_without_spec_is_refused(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"x")
    with pytest.raises(EmorecError, match="no preprocessing.json or run.json"):
        realtime.Classifier(str(tmp_path / "model.onnx"))


@pytest.mark.parametrize("threaded", [True, False])
def test_threaded_and_inline_io_give_the_same_records(tmp_path, threaded):
    faces = [detectors.Face(np.array([10, 10, 60, 60], float), 0.9)]
    source = realtime.Source(frames(12, bad_at={5}), 10.0, (160, 120), 12, "video")
    summary = realtime.run(source, EmotionRecognizer.from_parts(FakeDetector(faces), FakeClassifier()),
                           realtime.InferConfig(threaded_io=threaded), tmp_path, progress=False)
    assert summary["frames"] == 11 and summary["undecodable_frames"] == 1
    assert [json.loads(ln)["frame"] for ln in (tmp_path / "frames.jsonl").read_text().splitlines()] == \
        [i for i in range(12) if i != 5]
    cap = cv2.VideoCapture(str(tmp_path / "video.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 11


def test_prefetch_stops_early_and_reraises_source_errors():
    def endless():
        i = 0
        while True:
            yield i, 0.0, None
            i += 1

    ahead = realtime.Prefetch(endless(), depth=2)
    assert [ahead.next()[0] for _ in range(5)] == [0, 1, 2, 3, 4]
    ahead.close()   # returns although the source never ends
    assert not ahead._thread.is_alive()

    def broken():
        yield 0, 0.0, None
        raise OSError("device unplugged")

    failing = realtime.Prefetch(broken())
    assert failing.next()[0] == 0
    with pytest.raises(OSError, match="device unplugged"):
        failing.next()
    failing.close()


def test_background_writer_writes_in_order_and_surfaces_errors():
    class Recorder:
        def __init__(self, fail_at=None):
            self.frames, self.released, self.fail_at = [], False, fail_at

        def write(self, frame):
            if frame[0, 0, 0] == self.fail_at:
                raise OSError("disk full")
            self.frames.append(int(frame[0, 0, 0]))

        def release(self):
            self.released = True

    ok = Recorder()
    writer = realtime.BackgroundWriter(ok, depth=2)
    for i in range(20):
        writer.write(np.full((2, 2, 3), i, np.uint8))
    writer.release()
    assert ok.frames == list(range(20)) and ok.released

    failing = Recorder(fail_at=3)
    bad = realtime.BackgroundWriter(failing)
    for i in range(5):
        bad.write(np.full((2, 2, 3), i, np.uint8))
    with pytest.raises(OSError, match="disk full"):
        bad.release()   # the error from the writer thread reaches the caller
    assert failing.frames == [0, 1, 2] and failing.released


def test_classifier_paths_agree_with_the_eager_model(tmp_path):
    """The compiled Keras path and a one-thread ONNX export give the eager model's output."""
    from emorec.data.preprocess import to_model_input
    from emorec.models import loading

    model_file = _tiny_model_file(tmp_path / "m")
    keras_clf = realtime.Classifier(str(model_file))
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (s, s, 3), dtype=np.uint8) for s in (30, 64, 100)]
    batch = np.stack([cv2.resize(c, (48, 48), interpolation=cv2.INTER_AREA) for c in crops])
    model = loading.load_file(model_file)
    eager = np.asarray(model(to_model_input(batch, keras_clf.spec), training=False))
    np.testing.assert_allclose(keras_clf.predict_faces(crops), eager, atol=1e-5)
    np.testing.assert_allclose(keras_clf.predict_faces(crops[:1]), eager[:1], atol=1e-5)  # another batch size
    model.export(str(tmp_path / "x" / "model.onnx"), format="onnx", verbose=False)
    (tmp_path / "x" / "preprocessing.json").write_text(json.dumps(keras_clf.spec.to_dict()))
    onnx_clf = realtime.Classifier(str(tmp_path / "x" / "model.onnx"), threads=1)
    np.testing.assert_allclose(onnx_clf.predict_faces(crops), eager, atol=1e-4)
