"""Inference: face detectors, classifier runtimes (Keras, ONNX, TFLite), exports, the
tracker, video I/O, drawing and the real-time loop."""
