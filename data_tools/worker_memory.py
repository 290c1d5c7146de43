"""A ceiling on the memory a conversion worker may take on while it converts one sample.

A sample that needs more fails with MemoryError (NumPy and open3d's std::bad_alloc alike) and is
skipped like any bad sample, instead of growing the worker until the machine kills it. The ceiling
is RLIMIT_DATA (writable private memory: heap and anonymous mappings), not RLIMIT_AS: measured in a
`files --views=2` conversion, a worker with TensorFlow, Beam and open3d's renderer loaded reached
3.2 GB of address space (libraries, thread stacks, reservations) but 0.9 GB of data, so an
address-space ceiling near the memory a sample may use would fail good samples. It is set above
what the process holds when the sample starts, so a driver converting in process (in_memory), whose
pipeline data may exceed any fixed ceiling, is not stopped by memory it held before.
"""

import contextlib
import math
import resource
import threading

DEFAULT_GB = 4.0
MIN_GB = 0.5  # a sample rendered at 128 px took about 0.2 GB of data here
MAX_GB = 4096.0
_lock = threading.Lock()
_open = {"samples": 0, "limits": None}  # samples inside a ceiling in this process; the limits before the first


def flag_problem(gigabytes):
    """Why --worker_memory_gb cannot be `gigabytes`, or None."""
    if gigabytes == 0 or (math.isfinite(gigabytes) and MIN_GB <= gigabytes <= MAX_GB):
        return None
    return f"{gigabytes} is not 0 (no limit) or in [{MIN_GB:g}, {MAX_GB:g}] GB"


def _data_bytes():
    """Bytes of data (VmData) this process holds now, or None where /proc does not tell."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmData:"))
    except (OSError, StopIteration, ValueError):
        return None


@contextlib.contextmanager
def ceiling(gigabytes):
    """Lets this process take on at most `gigabytes` GiB more data while the block runs (0: no cap).

    Samples converting at once in threads of one process (multi_threading) share the limit, set by the
    latest to start; the limit from before comes back when the last one ends. Without /proc (not
    Linux) nothing is capped.
    """
    held = _data_bytes() if gigabytes else None
    if held is None:
        yield
        return
    with _lock:
        if not _open["samples"]:
            _open["limits"] = resource.getrlimit(resource.RLIMIT_DATA)
        _open["samples"] += 1
        hard = _open["limits"][1]
        limit = held + int(gigabytes * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard))
    try:
        yield
    finally:
        with _lock:
            _open["samples"] -= 1
            if not _open["samples"]:
                resource.setrlimit(resource.RLIMIT_DATA, _open["limits"])


def out_of_memory(path, gigabytes):
    """The reason a sample is skipped when it needed more than the ceiling."""
    return f"{path}: ran out of memory (needed over --worker_memory_gb={gigabytes:g} GiB)"
