"""Writing a file so that no reader ever sees half of it: a temporary name beside it, then a rename.

Standard library only, so the edge inference CLI can use it without TensorFlow.
"""

import contextlib
import os
import shutil
import tempfile


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


@contextlib.contextmanager
def staged_folder(out):
    """Yields a new folder inside `out` (created if missing) for the files of one run.

    On success its files are moved into `out`, replacing same-named ones only
    then; on any failure they are removed, and so is `out` if it was created
    here. Other files in `out` are never touched. Raises OSError when `out`
    cannot be created or written.
    """
    created = not os.path.exists(out)
    os.makedirs(out, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".partial-", dir=out)
    try:
        yield staging
        for name in sorted(os.listdir(staging)):
            os.replace(os.path.join(staging, name), os.path.join(out, name))
        os.rmdir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        raise
