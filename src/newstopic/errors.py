"""The one exception type the CLI turns into a one-line message instead of a traceback."""


class NewstopicError(Exception):
    """A problem with the user's input: the message names it and says how to fix it."""


class DataError(NewstopicError):
    """Unreadable, missing or unusable data."""


class ArtifactError(NewstopicError):
    """A model directory that is missing, corrupted, tampered with or from another version."""
