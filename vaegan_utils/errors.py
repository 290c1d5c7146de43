"""Exceptions as the one line a user reads."""


def first_line(error, limit=None):
    """An exception as one line for a user: its message's first line, or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class LayoutError(ValueError):
    """An input folder matches none of the layouts expected of it; the message says which were expected."""
