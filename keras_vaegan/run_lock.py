"""One training run per model directory: an advisory lock file naming the run that holds it.

The lock is an exclusive `flock` on `<model_dir>/train.lock`, which the kernel
drops when its process ends, even by SIGKILL: a run killed without cleaning up
leaves a stale file (its pid, host and start time) but never a held lock. The
file is emptied, not removed, on release (removing it would let two runs lock
two different files of the same name). Standard library only.
"""

import fcntl
import json
import os
import socket
import time

LOCK_FILE = "train.lock"


class LockError(RuntimeError):
    """The model directory is in use by another run; the message names it."""


def _describe(holder):
    since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(holder.get("start", 0)))
    return f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} since {since}"


def _read(handle):
    handle.seek(0)
    try:
        return json.loads(handle.read() or "null")
    except ValueError:
        return None


class RunLock:
    """Holds `<model_dir>/train.lock` from `acquire()` to `release()`.

    `stale` is, after `acquire`, the description of a run that held the
    directory and ended without releasing it (taken over), else None.
    """

    def __init__(self, model_dir):
        self.path = os.path.join(model_dir, LOCK_FILE)
        self.handle = None
        self.stale = None

    def acquire(self):
        """Takes the lock or raises LockError naming the run holding it."""
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(handle)
            handle.close()
            who = _describe(holder) if isinstance(holder, dict) else "another process (starting up)"
            folder = os.path.dirname(self.path)
            raise LockError(f"{folder}: in use by {who}; wait for it or use another --model_dir") from None
        previous = _read(handle)
        if isinstance(previous, dict):
            self.stale = _describe(previous)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "start": time.time()}))
        handle.flush()
        os.fsync(handle.fileno())
        self.handle = handle
        return self

    def release(self):
        """Empties the lock file and drops the lock."""
        if self.handle is None:
            return
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.flush()
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        self.handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
