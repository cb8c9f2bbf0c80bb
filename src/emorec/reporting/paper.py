"""Numbers reported by the paper (Polsani et al., "Real-Time Human Emotion Recognition
from Facial Expressions using Deep Learning"), transcribed from its tables, so reports
can stand them beside ours. Nothing here is ours; reports label it as the paper's."""

# Accuracy tables. Keys: dataset -> model -> {"plain": acc, "balanced": acc}.
# FER2013: Tables IX (before augmentation) and X (after). RAF-DB: Tables IV and V.
# AffectNet: Table XIV (no augmentation comparison; "DenseNet121 (PCA)" and ViT-B16 on
# AffectNet-7 are separate rows).
ACCURACY = {
    "fer2013": {
        "cnn": {"plain": 0.63, "balanced": 0.62},
        "efficientnetv2b0": {"plain": 0.54, "balanced": 0.51},
        "resnet18": {"plain": 0.55, "balanced": 0.54},
        "densenet121": {"plain": 0.61, "balanced": 0.60},
        "custom_mobilenet": {"plain": 0.59, "balanced": 0.60},
    },
    "rafdb": {
        "cnn": {"plain": 0.77, "balanced": 0.78},
        "vgg16": {"plain": 0.72, "balanced": 0.74},
        "efficientnetv2b0": {"plain": 0.73, "balanced": 0.79},
        "inceptionv3": {"plain": 0.78, "balanced": 0.78},
        "custom_mobilenet": {"plain": 0.81, "balanced": 0.81},
    },
    "affectnet": {
        "cnn": {"plain": 0.509},
        "resnet18": {"plain": 0.45},
        "efficientnetv2b0": {"plain": 0.51},
        "densenet121": {"plain": 0.51},
        "densenet121_pca": {"plain": 0.54},
        "inceptionv3": {"plain": 0.46},
        "vit_b32": {"plain": 0.53},
        "vit_b16": {"plain": 0.60},
    },
}

TABLE_NAMES = {
    ("fer2013", "plain"): "Table IX", ("fer2013", "balanced"): "Table X",
    ("rafdb", "plain"): "Table IV", ("rafdb", "balanced"): "Table V",
    ("affectnet", "plain"): "Table XIV",
}

# Per-class (precision, recall, F1). Keys: (dataset, model, balance).
PER_CLASS = {
    ("fer2013", "cnn", "plain"): {  # Table VI
        "angry": (0.56, 0.53, 0.55), "disgust": (0.73, 0.50, 0.59), "fear": (0.55, 0.40, 0.46),
        "happy": (0.84, 0.81, 0.83), "neutral": (0.57, 0.58, 0.57), "sad": (0.47, 0.58, 0.52),
        "surprise": (0.71, 0.84, 0.77),
    },
    ("fer2013", "cnn", "balanced"): {  # Table VII
        "angry": (0.55, 0.50, 0.52), "disgust": (0.36, 0.59, 0.45), "fear": (0.49, 0.40, 0.44),
        "happy": (0.84, 0.82, 0.83), "neutral": (0.58, 0.54, 0.56), "sad": (0.46, 0.58, 0.51),
        "surprise": (0.78, 0.75, 0.76),
    },
    ("fer2013", "custom_mobilenet", "plain"): {  # Table VIII
        "angry": (0.46, 0.53, 0.49), "disgust": (0.69, 0.43, 0.53), "fear": (0.41, 0.42, 0.42),
        "happy": (0.82, 0.81, 0.81), "neutral": (0.58, 0.48, 0.53), "sad": (0.48, 0.46, 0.47),
        "surprise": (0.67, 0.81, 0.73),
    },
    ("rafdb", "cnn", "plain"): {  # Table I
        "angry": (0.62, 0.69, 0.65), "disgust": (0.49, 0.28, 0.36), "fear": (0.88, 0.28, 0.43),
        "happy": (0.86, 0.94, 0.90), "neutral": (0.68, 0.82, 0.75), "sad": (0.81, 0.54, 0.65),
        "surprise": (0.76, 0.78, 0.77),
    },
    ("rafdb", "cnn", "balanced"): {  # Table II
        "angry": (0.77, 0.54, 0.63), "disgust": (0.43, 0.39, 0.41), "fear": (0.67, 0.42, 0.52),
        "happy": (0.89, 0.92, 0.90), "neutral": (0.72, 0.77, 0.74), "sad": (0.68, 0.74, 0.71),
        "surprise": (0.83, 0.73, 0.78),
    },
    ("rafdb", "custom_mobilenet", "plain"): {  # Table III
        "angry": (0.66, 0.77, 0.71), "disgust": (0.52, 0.45, 0.48), "fear": (0.67, 0.42, 0.52),
        "happy": (0.93, 0.91, 0.92), "neutral": (0.74, 0.86, 0.79), "sad": (0.82, 0.76, 0.80),
        "surprise": (0.82, 0.75, 0.79),
    },
}

PER_CLASS_TABLE = {
    ("fer2013", "cnn", "plain"): "Table VI", ("fer2013", "cnn", "balanced"): "Table VII",
    ("fer2013", "custom_mobilenet", "plain"): "Table VIII", ("rafdb", "cnn", "plain"): "Table I",
    ("rafdb", "cnn", "balanced"): "Table II", ("rafdb", "custom_mobilenet", "plain"): "Table III",
}

# The paper's settings for its CNN (§IV.F.1), for the documented `dvc exp run -S` command.
CNN_SETTINGS = {"epochs": 40, "optimizer": "rmsprop", "learning_rate": 0.001}


def accuracy(dataset: str, model: str, balance: str) -> float | None:
    return ACCURACY.get(dataset, {}).get(model, {}).get(balance)
