"""EmotionRecognizer, the front door: faces and emotions from an image in one call."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import SHARED, needs_shared

from emorec.errors import EmorecError
from emorec.inference.detectors import Face
from emorec.recognizer import EmotionRecognizer, FacePrediction

YUNET = SHARED / "weights" / "face_detection_yunet.onnx"
VIDEO = SHARED / "media" / "videos" / "webcam_640x480_one_face.mp4"


class BoxDetector:
    def __init__(self, faces):
        self.faces = faces

    def detect(self, frame):
        return list(self.faces)


class ByBrightness:
    """Class 1 when the crop is bright, else class 0: checkable without a trained model."""
    classes = ("sad", "happy")

    def predict_faces(self, crops):
        bright = np.array([c.mean() > 127 for c in crops], float)
        return np.stack([1 - bright * 0.8 - 0.1, bright * 0.8 + 0.1], axis=1) if crops else np.zeros((0, 2))


def _frame():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[20:60, 120:160] = 255
    return frame


def test_predict_returns_every_face_with_box_probabilities_and_label():
    faces = [Face(np.array([20, 20, 60, 60], float), 0.9),
             Face(np.array([120, 20, 160, 60], float), 0.8, np.arange(10, dtype=float).reshape(5, 2)),
             Face(np.array([0, 0, 5, 5], float), 0.7)]   # below min_face
    rec = EmotionRecognizer.from_parts(BoxDetector(faces), ByBrightness(), margin=0.0, min_face=20)
    out = rec.predict(_frame())
    assert [f.label for f in out] == ["sad", "happy"]
    assert out[0].box == (20.0, 20.0, 60.0, 60.0) and out[0].landmarks is None
    assert out[1].landmarks == np.arange(10).reshape(5, 2).tolist()
    assert out[1].score == pytest.approx(0.9) and out[1].detector_score == pytest.approx(0.8)
    assert set(out[1].probabilities) == {"sad", "happy"}
    assert sum(out[1].probabilities.values()) == pytest.approx(1.0)
    assert set(out[0].to_dict()) == {"box", "landmarks", "probabilities", "label", "score", "detector_score"}


def test_predict_faces_takes_crops_and_gives_no_box():
    rec = EmotionRecognizer.from_parts(BoxDetector([]), ByBrightness())
    out = rec.predict_faces([np.zeros((30, 30, 3), np.uint8), np.full((48, 48, 3), 250, np.uint8)])
    assert [f.label for f in out] == ["sad", "happy"] and all(f.box is None for f in out)
    assert rec.predict_faces([]) == []


def test_path_and_array_give_the_same_answer(tmp_path):
    rec = EmotionRecognizer.from_parts(BoxDetector([Face(np.array([120, 20, 160, 60], float), 0.9)]),
                                       ByBrightness())
    cv2.imwrite(str(tmp_path / "p.png"), _frame())
    assert rec.predict(tmp_path / "p.png") == rec.predict(_frame())
    grey = cv2.cvtColor(_frame(), cv2.COLOR_BGR2GRAY)
    assert rec.predict(grey)[0].label == "happy"


@pytest.mark.parametrize("bad, message", [
    ("nowhere.jpg", "image not found"),
    (np.zeros((10, 10, 3), np.float32), "must be uint8"),
])
def test_bad_images_are_named(bad, message):
    rec = EmotionRecognizer.from_parts(BoxDetector([]), ByBrightness())
    with pytest.raises(EmorecError, match=message):
        rec.predict(bad)


def test_a_file_that_is_not_an_image_is_named(tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    rec = EmotionRecognizer.from_parts(BoxDetector([]), ByBrightness())
    with pytest.raises(EmorecError, match="notes.jpg: not a readable image"):
        rec.predict(tmp_path / "notes.jpg")


def test_unknown_detector_lists_the_known_ones(tmp_path):
    with pytest.raises(EmorecError, match="unknown detector 'mtcnn'; known: haar, .*yunet"):
        EmotionRecognizer(str(tmp_path / "m.keras"), detector="mtcnn", root=tmp_path)


def test_import_emorec_is_light_and_the_front_door_is_there():
    code = ("import sys, emorec; assert 'cv2' not in sys.modules and 'keras' not in sys.modules; "
            "from emorec import EmotionRecognizer; print(EmotionRecognizer.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "EmotionRecognizer", out.stderr[-1000:]


@pytest.mark.integration
@needs_shared(VIDEO)
def test_a_real_face_with_yunet_and_a_keras_file(tmp_path):
    import keras

    from emorec import files, models
    from emorec.data.preprocess import InputSpec
    from emorec.labels import BASIC_EMOTIONS

    keras.utils.set_random_seed(0)
    (tmp_path / "m").mkdir()
    models.build("cnn", (48, 48, 1), 7, filters=(8,), dense_units=8).save(tmp_path / "m" / "model.keras")
    files.write_json(tmp_path / "m" / "run.json", {"input_spec": InputSpec(48, 1, BASIC_EMOTIONS).to_dict()})
    cap = cv2.VideoCapture(str(VIDEO))
    cap.set(cv2.CAP_PROP_POS_FRAMES, 100)
    ok, frame = cap.read()
    assert ok
    rec = EmotionRecognizer(str(tmp_path / "m" / "model.keras"), "yunet",
                            detector_settings={"weights": str(YUNET)}, root=tmp_path)
    faces = rec.predict(frame)
    assert len(faces) == 1 and isinstance(faces[0], FacePrediction)
    x1, y1, x2, y2 = faces[0].box
    assert 0 <= x1 < x2 <= frame.shape[1] and 0 <= y1 < y2 <= frame.shape[0]
    assert len(faces[0].landmarks) == 5 and faces[0].label in BASIC_EMOTIONS
    assert faces[0].score == pytest.approx(max(faces[0].probabilities.values()))
