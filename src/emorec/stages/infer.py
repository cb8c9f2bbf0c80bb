"""DVC stage `infer`: the champion on a video, camera, photo or folder of photos."""

from __future__ import annotations

from pathlib import Path

from emorec import files
from emorec.config import Paths, load_params, project_root, section


def run(source: str | None = None, model: str | None = None, detector: str | None = None,
        out_dir: str | None = None, params: dict | None = None, root: Path | None = None,
        overrides: dict | None = None, progress: bool = True) -> dict:
    """Detect, track and classify faces in a video, camera, image or folder of images.
    `overrides`: `infer` keys to replace (None values are ignored)."""
    from emorec.inference import realtime
    from emorec.recognizer import EmotionRecognizer

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = dict(section(params, "infer"))
    cfg.update({k: v for k, v in (overrides or {}).items() if v is not None})
    source = source or cfg["source"]
    configured_source = str(source)
    model = model or cfg["model"]
    name = detector or cfg["detector"]
    out = Path(out_dir or cfg["out_dir"])
    out = out if out.is_absolute() else paths.root / out
    if not str(source).isdigit() and not Path(source).is_absolute():
        source = str(paths.root / source)
    recognizer = EmotionRecognizer.from_params(params, paths.root, model=model, detector=name,
                                                overrides=cfg)
    known = set(realtime.InferConfig.__dataclass_fields__)
    run_cfg = realtime.InferConfig(**{k: v for k, v in cfg.items() if k in known})
    summary = realtime.run(realtime.open_source(str(source)), recognizer, run_cfg, out, progress)
    summary.update({"source": configured_source, "model": model, "detector": name})
    files.write_json(out / "summary.json", summary)
    print(f"{summary['frames']} frames, {summary['faces_classified']} faces, {summary['tracks']} tracks, "
          f"{summary['fps']} FPS end to end ({name} detector) -> {out}")
    return summary
