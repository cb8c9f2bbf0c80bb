"""DVC stage `infer`: the champion on a video, camera, photo, folder of photos or glob.

Videos and cameras go through the real-time loop (tracking, smoothing, annotated video);
photos are photos (`emorec.inference.photos`: one annotated image and record each). Every
option is checked before a model loads, and a bad one is named as the user gave it."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from emorec import console, files
from emorec.config import Paths, load_params, project_root, resolve_model, section
from emorec.errors import EmorecError

MODEL_SUFFIXES = (".keras", ".onnx", ".tflite")
# (check, what it must be) per infer key
RULES = {
    "margin": (lambda v: isinstance(v, (int, float)) and 0 <= v <= 1, "a number from 0 to 1"),
    "ema": (lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "a number from 0 up to (not incl.) 1"),
    "detect_every": (lambda v: isinstance(v, int) and v >= 1, "an integer of at least 1"),
    "max_frames": (lambda v: v is None or (isinstance(v, int) and v >= 1), "an integer of at least 1"),
    "min_face": (lambda v: isinstance(v, (int, float)) and v >= 0, "a number of pixels, 0 or more"),
    "iou_threshold": (lambda v: isinstance(v, (int, float)) and 0 < v <= 1, "a number in (0, 1]"),
    "max_missed": (lambda v: isinstance(v, int) and v >= 0, "an integer, 0 or more"),
    "min_track_frames": (lambda v: isinstance(v, int) and v >= 1, "an integer of at least 1"),
    "max_detect_side": (lambda v: v is None or (isinstance(v, int) and v >= 64), "null or an integer >= 64"),
    "classifier_threads": (lambda v: isinstance(v, int) and v >= 0, "an integer, 0 or more"),
    "tta": (lambda v: v in (None, "flip", "ten"), "null, flip or ten"),
}


SWITCHES = ("align", "show", "threaded_io", "shrink_frames")   # true or false, nothing else


def check_options(cfg: dict, flags: dict[str, str] | None = None) -> None:
    """Every infer setting checked before anything loads; `flags` maps a key to the flag
    the user typed (`--margin`), else the message names params.yaml."""
    flags = flags or {}
    for key in SWITCHES:
        if key in cfg and not isinstance(cfg[key], bool):
            raise EmorecError(f"{flags.get(key, f'params.yaml infer.{key}')} must be true or false, got {cfg[key]!r}")
    for key, (ok, what) in RULES.items():
        if key in cfg and (isinstance(cfg[key], bool) or not ok(cfg[key])):
            where = flags.get(key, f"params.yaml infer.{key}")
            raise EmorecError(f"{where} must be {what}, got {cfg[key]!r}")


def _resolve(value: str, base: Path) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


def run(source: str | None = None, model: str | None = None, detector: str | None = None,
        out_dir: str | None = None, params: dict | None = None, root: Path | None = None,
        overrides: dict | None = None, progress: bool = True, flags: dict[str, str] | None = None) -> dict:
    """Detect and classify faces in a video, camera, image, folder of images or glob.
    `overrides`: `infer` keys to replace (None values are ignored). Relative paths in
    params.yaml are relative to the project root; the CLI passes the user's as absolute."""
    from emorec.inference import photos, realtime
    from emorec.inference.detectors import DETECTORS
    from emorec.recognizer import EmotionRecognizer

    params = params or load_params()
    paths = Paths(root or project_root())
    flags = flags or {}
    cfg = dict(section(params, "infer"))
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    check_options(cfg, flags)
    source = str(source or cfg["source"])
    configured_source = source
    model = resolve_model(str(model or cfg["model"]), paths.root)
    name = detector or cfg["detector"]
    DETECTORS.get(name, f" ({flags.get('detector', 'params.yaml infer.detector')})")
    out = Path(_resolve(str(out_dir or cfg["out_dir"]), paths.root))
    if out.exists() and not out.is_dir():
        raise EmorecError(f"{flags.get('out', 'params.yaml infer.out_dir')} {out} is a file; name a folder")
    if not source.isdigit():
        source = _resolve(source, paths.root)
    photo_mode = not source.isdigit() and photos.is_photo_source(source)
    if photo_mode:
        photo_list = photos.photo_paths(source)
    elif not source.isdigit() and not Path(source).exists():
        raise EmorecError(f"input {source} not found")
    if not model.startswith(("models:/", "runs:/")):
        model = _resolve(model, paths.root)
        if Path(model).suffix.lower() not in MODEL_SUFFIXES:
            raise EmorecError(f"{flags.get('model', 'params.yaml infer.model')} {model}: use a "
                              f"{', '.join(MODEL_SUFFIXES)} file or a models:/ URI")
        if not Path(model).is_file():
            raise EmorecError(f"{flags.get('model', 'params.yaml infer.model')} {model} not found")

    console.quiet_if_asked()
    recognizer = EmotionRecognizer.from_params(params, paths.root, model=model, detector=name,
                                                overrides=cfg)
    if photo_mode:
        summary = photos.run(photo_list, recognizer, out)
        summary.update({"source": configured_source, "model": model, "detector": name, "tta": cfg.get("tta")})
        files.write_json(out / "summary.json", summary)
        print(f"{summary['read']} photo(s), {summary['faces']} face(s) ({name} detector) -> {out}")
        if summary["without_faces"]:
            print(f"no face found in {len(summary['without_faces'])} photo(s): "
                  + ", ".join(Path(p).name for p in summary["without_faces"][:10]))
        if summary["unreadable"]:
            print(f"warning: {len(summary['unreadable'])} file(s) could not be read as images: "
                  + ", ".join(summary["unreadable"][:10]))
        return summary

    known = set(realtime.InferConfig.__dataclass_fields__)
    run_cfg = realtime.InferConfig(**{k: v for k, v in cfg.items() if k in known})
    with _sigterm_as_interrupt():
        summary = realtime.run(realtime.open_source(source), recognizer, run_cfg, out, progress)
    summary.update({"source": configured_source, "model": model, "detector": name, "tta": cfg.get("tta"),
                    "shrink_frames": run_cfg.shrink_frames})
    files.write_json(out / "summary.json", summary)
    print(f"{summary['frames']} frames, {summary['faces_classified']} faces, {summary['tracks']} tracks, "
          f"{summary['fps']} FPS end to end ({name} detector) -> {out}")
    if summary.get("interrupted"):
        print(f"interrupted: outputs cover the {summary['frames']} frames read before the stop")
    if summary["undecodable_frames"]:
        print(f"warning: {summary['undecodable_frames']} frame(s) of {source} could not be decoded "
              "(damaged or truncated file); they were skipped")
    return summary


class _sigterm_as_interrupt:  # noqa: N801  (used as a context manager)
    """SIGTERM ends a run the way Ctrl-C does: the loop stops and writes its outputs."""

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum, frame):
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
