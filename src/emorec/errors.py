"""User-facing errors: a message that names the file and the problem, nothing else."""


class EmorecError(Exception):
    """An error caused by input or configuration; stages print it and exit non-zero."""


class DataNotFoundError(EmorecError):
    """No copy of a dataset was found in any of the places searched."""


class DataFormatError(EmorecError):
    """A dataset file exists but its content is not what the adapter expects."""
