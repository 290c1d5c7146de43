"""Writing a file so that no reader ever sees half of it: a temporary name beside it, then a rename.

Standard library only, so the edge inference CLI can use it without TensorFlow.
"""

import contextlib
import os


def write_atomically(path, write):
    """Calls `write(temporary_path)`, then renames that file to `path`; on any failure removes it."""
    temporary = f"{path}.tmp-{os.getpid()}"
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_bytes_atomically(path, data):
    """Writes `data` (bytes) to `path` through `write_atomically`."""

    def write(temporary):
        with open(temporary, "wb") as handle:
            handle.write(data)

    write_atomically(path, write)
