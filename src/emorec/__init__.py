"""emorec: reproducible real-time facial emotion recognition (DVC + MLflow + Keras)."""

__version__ = "0.1.0"
