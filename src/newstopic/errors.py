"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class NewstopicError(ValueError):
    """A problem with the user's input: the message names it and says how to fix it. A
    `ValueError`, as scikit-learn's own input errors are."""


class DataError(NewstopicError):
    """Unreadable, missing or unusable data."""


class ArtifactError(NewstopicError):
    """A model directory that is missing, corrupted, tampered with or from another version."""


class NotFittedError(NewstopicError, AttributeError):
    """A model used before `fit` or `load`; both a ValueError and an AttributeError, as
    scikit-learn's `NotFittedError` is."""
