"""The error every dataset loader raises."""


class DatasetError(ValueError):
    """A dataset directory or file is missing or malformed; the message names the path and the problem."""
