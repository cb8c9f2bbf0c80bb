"""Model cards: what a registered model is, how well it does, and where it should not be trusted."""

from __future__ import annotations

from pathlib import Path

from emorec import files

LIMITATIONS = {
    "fer2013": [
        "FER2013 faces are 48x48 greyscale web images found by keyword search: low resolution, "
        "many non-frontal faces, watermarks, some non-faces (12 blank images) and ~1,500 groups of "
        "exact duplicates (copies in train that also occur in validation/test were dropped).",
        "Labels are single annotations; human agreement on FER2013 is estimated at about 65 %.",
        "Disgust has ~1.5 % of the images; its recall is the least reliable.",
    ],
    "affectnet": [
        "Trained on a public re-split subset of AffectNet, not the official split; 190 groups of "
        "identical images (97 across splits) were found, and training copies of evaluation images dropped.",
        "happy and neutral are under-represented in this subset, the reverse of full AffectNet.",
    ],
    "rafdb": ["RAF-DB images are licensed for research by their authors."],
}
COMMON = [
    "Demographic balance of these datasets is not documented; accuracy across age, gender and "
    "skin tone has not been measured and must not be assumed equal.",
    "Posed or exaggerated expressions dominate; spontaneous, subtle expressions are harder.",
    "A facial expression is not a felt emotion; do not use the output for decisions about people.",
]


def write_model_card(path: Path, decision, record: dict, meta: dict, tags: dict) -> None:
    prov = record["provenance"]
    test = record["test"]
    base = prov["dataset"].removesuffix("_pca")
    rows = "\n".join(f"| {c} | {m['precision']:.2f} | {m['recall']:.2f} | {m['f1']:.2f} | {m['support']} |"
                     for c, m in test["per_class"].items())
    spec = meta["input_spec"]
    lines = [
        f"# Model card: {decision.model_name} v{decision.version}",
        "",
        f"**Status:** {'champion' if decision.promoted else 'challenger'}: {decision.reason}.",
        "",
        "## What it is",
        "",
        f"- Architecture: `{prov['model']}` ({'class-balanced' if prov['balance'] == 'balanced' else 'plain'} "
        f"training set"
        + (f"; trained towards the soft targets of an ensemble of {len(meta['distilled_from'])} models"
           if meta.get("distilled_from") else "") + f"), weights: {meta['weights']}, best of {prov['epochs_run']} epochs "
        f"(epoch {prov['best_epoch']}), seed {prov['seed']}.",
        f"- Input: {spec['size']}x{spec['size']} pixels, {spec['channels']} channel(s), scaled to [0, 1]; "
        f"classes: {', '.join(spec['classes'])}.",
        f"- Data: {prov['data']}, split protocol `{prov['protocol']}`, {meta['n_train']} training images; "
        f"test set: {prov['test_set']}.",
        f"- MLflow run `{decision.run_id}`, git commit `{tags['git_commit'][:12]}`, params hash "
        f"`{tags['params_hash']}`, training data fingerprint `{tags['train_data_fingerprint']}`, "
        f"validation data fingerprint `{tags['val_data_fingerprint']}`.",
        "",
        "## How well it does",
        "",
        f"Chosen on validation {decision.metric} = {decision.candidate_score:.4f}"
        + (f" (champion v{decision.champion_version}: {decision.champion_score:.4f}, margin "
           f"{decision.margin})" if decision.champion_version else "") + ".",
        "",
        "| split | accuracy | macro-F1 |",
        "|---|---|---|",
        f"| validation | {tags['val_accuracy']:.4f} | {tags['val_macro_f1']:.4f} |",
        f"| test (n = {test['n']}) | {test['accuracy']:.4f} | {test['macro_f1']:.4f} |",
        "",
        "Per class on the test split:",
        "",
        "| emotion | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
        rows,
        "",
        f"Confusion matrix: `reports/evaluation/{prov['run_name']}/confusion_normalized.png`.",
        "",
        "## Known limitations",
        "",
        *[f"- {t}" for t in LIMITATIONS.get(base, []) + COMMON],
        f"- Inputs are {spec['size']} px; faces from a detector must be cropped and resized the same "
        "way (`emorec.preprocess.to_model_input`).",
        "",
    ]
    files.write_text(path, "\n".join(lines))
