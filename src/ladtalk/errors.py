"""The one exception type users see: a message that names the problem and what to do about it."""


class LadtalkError(Exception):
    """A user-facing error. The CLI prints it without a traceback and exits with status 2."""


class InputError(LadtalkError):
    """A file or argument given by the user is missing, unreadable or unsuitable."""


class NoFaceError(InputError):
    """No usable face was found where one is required."""


class CheckpointError(LadtalkError):
    """A weight or checkpoint file is of the wrong kind, truncated, unsafe or from an incompatible version."""
