"""Experiments: MLflow runs and provenance (`tracking`), the model registry and its
champion alias, model cards, the retrain workflow's logic."""
