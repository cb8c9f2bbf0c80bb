"""DVC stage `detectors`: every configured face detector on WIDER FACE photos."""

from __future__ import annotations

import time
from pathlib import Path

from emorec import files
from emorec.config import Paths, load_params, project_root, section
from emorec.errors import EmorecError


def run(params: dict | None = None, root: Path | None = None) -> Path:
    """Every configured detector on the WIDER photos: recall, false positives, speed."""
    from emorec.evaluation import detectors as detector_eval
    from emorec.experiments import tracking
    from emorec.inference import detectors

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = section(params, "detector_eval")
    key_total = f"faces_min_{cfg['min_face']}px"
    resolve = lambda p: Path(p) if Path(p).is_absolute() else paths.root / p  # noqa: E731
    gt_path, images = resolve(cfg["ground_truth"]), resolve(cfg["images"])
    if not gt_path.exists():
        raise EmorecError(f"{gt_path}: WIDER ground truth not found (detector_eval.ground_truth)")
    truth = detector_eval.read_wider_ground_truth(gt_path)
    results = {}
    for name in cfg["detectors"]:
        try:
            det = detectors.create(name, section(params, "detectors").get(name), paths.root)
        except detectors.WeightsError as exc:
            results[name] = {"unavailable": str(exc)}
            print(f"{name}: not evaluated ({exc})")
            continue
        rows = {name: det}
        smallest = getattr(det, "smallest_face", None)
        if smallest and cfg["min_face"] > smallest:   # also as the real-time loop searches frames
            rows[f"{name}, shrunk so {cfg['min_face']} px faces are {smallest} px (real-time frames)"] = \
                detectors.Shrunk(det, cfg["min_face"])
        for row, searcher in rows.items():
            results[row] = detector_eval.evaluate(searcher, images, truth, cfg["min_face"], cfg["iou"])
            r = results[row]
            print(f"{row}: recall {r['recall']:.3f} ({r['found']}/{r[key_total]}), "
                  f"{r['false_positives']} false positives, {r['ms_per_image']:.1f} ms/image")
    out = paths.root / "reports" / "detectors.json"
    n_faces = sum(len(v) for v in truth.values())
    hardware = tracking.hardware()
    files.write_json(out, {"images": len(truth), "faces": n_faces, "min_face": cfg["min_face"],
                        "iou": cfg["iou"], "hardware": hardware, "detectors": results})
    lines = ["# Face detectors on WIDER FACE validation photos", "",
             f"{len(truth)} photos, {n_faces} annotated faces; recall counts faces of at least "
             f"{cfg['min_face']} px (short side) found at IoU >= {cfg['iou']}; a false positive is a "
             "detection that matches no annotated face of any size. Speed is per photo, measured "
             f"{time.strftime('%Y-%m-%d')} on {hardware} (one detector after another, so compare them "
             "with each other, not with other runs).", "",
             "| detector | recall | faces found | false positives | precision | ms / photo |",
             "|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "unavailable" in r:
            lines.append(f"| {name} | not evaluated: {r['unavailable']} |  |  |  |  |")
        else:
            lines.append(f"| {name} | {r['recall']:.3f} | {r['found']} / {r[key_total]} | {r['false_positives']} "
                         f"| {r['precision']:.3f} | {r['ms_per_image']:.1f} |")
    files.write_text(out.with_suffix(".md"), "\n".join(lines) + "\n")
    return out
