"""DVC stage `prepare@<dataset>`: split per protocol, drop leaking duplicates, balance by augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emorec import files, grid
from emorec.config import Paths, load_params, project_root, section
from emorec.data import prepared
from emorec.data.adapters import DatasetCache, adapter_for
from emorec.errors import EmorecError


def run(dataset: str, params: dict | None = None, root: Path | None = None) -> Path:
    """Split per protocol, apply the duplicate policy, write plain and balanced training sets."""
    from emorec.data import augment, split
    from emorec.reporting import plots

    params = params or load_params()
    paths = Paths(root or project_root())
    mod = adapter_for(dataset, section(params, "fetch"))
    cfg = section(params, "prepare")
    seed = int(section(params, "seed"))
    cache = DatasetCache.load(paths.cache(dataset))
    out = paths.prepared(dataset)
    figures = paths.root / "reports" / "figures"
    if cache.meta.get("missing"):
        reason = cache.meta["missing"].splitlines()[0]
        with files.atomic_path(out) as tmp:
            tmp.mkdir(parents=True)
            files.write_json(tmp / prepared.MISSING_MARKER, {"reason": reason})
        files.write_json(paths.root / "reports" / "prepare" / f"{dataset}.json",
                      {"dataset": dataset, "skipped": reason})
        prepared.write_placeholders(reason, [figures / f"{dataset}_class_distribution.png",
                                     figures / f"{dataset}_balancing.png"])
        print(f"{dataset}: skipped ({reason})")
        return out
    report_path = paths.validation_report(dataset)
    if not report_path.exists():
        raise EmorecError(f"{report_path}: validation report missing; run the validate stage first")
    groups = files.read_json(report_path)["duplicate_groups"]

    protocol = grid.protocol_for(params, dataset)
    masks = split.make_splits(cache, protocol, cfg["val_fraction"], seed,
                              getattr(mod, "PAPER_TEST_SPLITS", ("test",)))
    policy = section(params, "validate", "duplicates")
    train_mask, dropped = split.apply_duplicate_policy(cache, masks, groups, policy)
    train, val, test = cache.subset(train_mask), cache.subset(masks[1]), cache.subset(masks[2])
    aug_cfg = augment.AugmentConfig.from_params(cfg.get("augmentation", {}))
    bal_images, bal_labels, is_aug = augment.balance(
        train.images, train.labels, len(cache.classes), cfg["balance_target"], aug_cfg, seed)

    classes = np.array(cache.classes)
    with files.atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for name, part in (("train", train), ("val", val), ("test", test)):
            with open(tmp / f"{name}.npz", "wb") as fh:
                np.savez(fh, images=part.images, labels=part.labels, source_id=part.source_id,
                         classes=classes)
        with open(tmp / "train_balanced.npz", "wb") as fh:
            np.savez(fh, images=bal_images, labels=bal_labels, augmented=is_aug, classes=classes)

    balanced_counts = {c: int(n) for c, n in zip(cache.classes,
                                                 np.bincount(bal_labels, minlength=len(classes)))}
    summary = {
        "dataset": dataset, "protocol": protocol, "val_fraction": cfg["val_fraction"],
        "seed": seed, "duplicates_policy": policy, "dropped_from_train": len(dropped),
        "dropped_source_ids": dropped,
        "train": train.counts(), "val": val.counts(), "test": test.counts(),
        "train_balanced": balanced_counts, "balance_target": cfg["balance_target"],
        "augmented_images": int(is_aug.sum()),
    }
    files.write_json(paths.root / "reports" / "prepare" / f"{dataset}.json", summary)
    plots.class_distribution(
        {"train": train.counts(), "validation": val.counts(), "test": test.counts()},
        figures / f"{dataset}_class_distribution.png",
        f"{dataset}: images per class and split ({protocol} protocol)")
    plots.class_distribution(
        {"before balancing": train.counts(), f"after balancing ({cfg['balance_target']})": balanced_counts},
        figures / f"{dataset}_balancing.png",
        f"{dataset}: training set before and after balancing by augmentation")
    print(f"{dataset}: train {len(train)} (dropped {len(dropped)} cross-split duplicates), "
          f"val {len(val)}, test {len(test)}; balanced train {len(bal_labels)} "
          f"(+{int(is_aug.sum())} augmented) -> {out.relative_to(paths.root)}")
    return out
