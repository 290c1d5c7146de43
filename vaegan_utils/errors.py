"""Exceptions as the one line a user reads."""


def first_line(error, limit=None):
    """An exception as one line for a user: its message's first line, or its type's name."""
    text = str(error).strip()
    return text.splitlines()[0][:limit] if text else type(error).__name__


class LayoutError(ValueError):
    """An input folder matches none of the layouts expected of it; the message says which were expected."""


class BadFile(ValueError):
    """A file that cannot be read; the message is `<path>: <what is wrong>`."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem

    def __reduce__(self):  # pickles (Beam workers) with both arguments
        return BadFile, (self.path, self.problem)
