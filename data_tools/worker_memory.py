"""A ceiling on the memory a conversion worker may take while it converts one sample.

A sample that needs more fails with MemoryError (NumPy and open3d's std::bad_alloc alike) and is
skipped like any bad sample, instead of growing the worker until the machine kills it. The ceiling
is RLIMIT_DATA (writable private memory: heap and anonymous mappings), not RLIMIT_AS: measured in a
`files --views=2` conversion, a worker with TensorFlow, Beam and open3d's renderer loaded reached
3.2 GB of address space (libraries, thread stacks, reservations) but 0.9 GB of data, so an address-space ceiling near the memory a sample may use would fail good samples.
"""

import contextlib
import math
import resource

DEFAULT_GB = 4.0
MIN_GB = 1.0  # a worker holds about 0.9 GB of data with TensorFlow and open3d loaded
MAX_GB = 4096.0


def flag_problem(gigabytes):
    """Why --worker_memory_gb cannot be `gigabytes`, or None."""
    if gigabytes == 0 or (math.isfinite(gigabytes) and MIN_GB <= gigabytes <= MAX_GB):
        return None
    return (f"{gigabytes} is not 0 (no limit) or in [{MIN_GB:g}, {MAX_GB:g}] GB (a worker holds about 0.9 GB "
            f"with TensorFlow and open3d loaded)")


@contextlib.contextmanager
def ceiling(gigabytes):
    """Caps this process's data memory at `gigabytes` GiB while the block runs (0: no cap).

    The previous limit comes back afterwards, so a driver running samples in process keeps its own.
    """
    if not gigabytes:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    limit = int(gigabytes * 2**30)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


def out_of_memory(path, gigabytes):
    """The reason a sample is skipped when it needed more than the ceiling."""
    return f"{path}: ran out of memory (over the worker's --worker_memory_gb={gigabytes:g})"
