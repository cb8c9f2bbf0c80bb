"""DVC stage `combine`: the `combined` grid dataset from the prepared sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared


def run(params: dict | None = None, root: Path | None = None) -> Path:
    from emorec.data.combine import PARTS, CombineConfig, combine_part
    from emorec.data.framing import crop_centre, framing_from_params

    params = params or load_params()
    paths = Paths(root or project_root())
    cfg = CombineConfig.from_params(section(params, "combine"))
    framing = framing_from_params(section(params, "combine"))
    out = paths.prepared(cfg.name)
    report = paths.root / "reports" / "combine.json"
    present = {s: paths.prepared(s) for s in cfg.sources if not prepared.missing_reason(paths.prepared(s))}
    left_out = {s: prepared.missing_reason(paths.prepared(s)) or "not prepared" for s in cfg.sources
                if s not in present}
    for source, folder in present.items():
        if not (folder / "train.npz").exists():
            left_out[source] = f"{folder}: not prepared; run the prepare stage first"
    present = {s: f for s, f in present.items() if s not in left_out}
    if len(present) < 2:
        reason = f"combine needs at least two prepared sources; left out: {left_out}"
        with files.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            files.write_json(tmp / prepared.MISSING_MARKER, {"reason": reason})
        files.write_json(report, {"name": cfg.name, "skipped": reason})
        print(f"{cfg.name}: {reason}")
        return out
    summary = {"name": cfg.name, "classes": list(cfg.classes), "size": cfg.size, "channels": cfg.channels,
               "framing": framing, "sources": list(present), "left_out": left_out, "counts": {}}
    with files.atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for part in PARTS:
            parts = {s: files.load_npz(f / f"{part}.npz") for s, f in present.items()}
            for source, fraction in framing.items():
                if source in parts:
                    parts[source] = {**parts[source], "images": crop_centre(parts[source]["images"], fraction)}
            data, counts = combine_part(parts, cfg)
            with open(tmp / f"{part}.npz", "wb") as fh:
                np.savez(fh, **data)
            summary["counts"][part] = counts
    files.write_json(report, summary)
    sizes = ", ".join(f"{p} {sum(sum(c.values()) for c in summary['counts'][p].values())}" for p in PARTS)
    print(f"{cfg.name}: {' + '.join(present)} in {len(cfg.classes)} classes at {cfg.size} px x "
          f"{cfg.channels}: {sizes}" + (f"; left out {left_out}" if left_out else ""))
    return out
