"""Evaluation: metrics and confusion plots, cross-dataset scoring, Grad-CAM and feature
maps, face-detector accuracy on WIDER FACE."""
