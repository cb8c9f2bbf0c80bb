"""emorec: real-time facial emotion recognition, reproducible with DVC and MLflow.

`from emorec import EmotionRecognizer` is the front door for Python users (imported on
first use, so `import emorec` stays light)."""


def __getattr__(name):
    if name in ("EmotionRecognizer", "FacePrediction"):
        from emorec import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'emorec' has no attribute {name!r}")
