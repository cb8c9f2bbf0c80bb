"""The project's one label vocabulary.

Every dataset adapter maps its own label ids or folder names onto these names, so a
model trained on one dataset can be evaluated on another over the classes they share.
"""

# Canonical order: FER2013's ids 0..6, then AffectNet's extra class.
VOCABULARY: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
    "contempt",
)

BASIC_EMOTIONS: tuple[str, ...] = VOCABULARY[:7]

# Names that users' datasets use for the same emotion.
ALIASES: dict[str, str] = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "neutrality": "neutral",
}


def canonical(name: str) -> str:
    """Map a dataset's class name to the vocabulary, or raise KeyError."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in VOCABULARY:
        raise KeyError(name)
    return key
