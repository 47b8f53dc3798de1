"""The one exception type the CLI turns into a one-line message and exit code 2."""


class NmtError(Exception):
    """A problem the user can fix (bad file, bad config, bad input); the message names it."""
