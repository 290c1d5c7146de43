"""Training on jemalloc instead of glibc's malloc: a peak 65-100 MB lower at 64^3, for 2-14% of a step.

TensorFlow frees and allocates tensors of many sizes at every step; glibc's
malloc keeps the freed memory in fragmented heaps, jemalloc gives large buffers
back (docs/benchmarks.md). A malloc is replaced only by a library loaded before
all others, so `run_on_jemalloc` re-executes the process with jemalloc in
LD_PRELOAD: same pid, arguments and environment otherwise. KERAS_VAEGAN_MALLOC
chooses: `jemalloc` (the default; glibc's malloc where the system has no
jemalloc, e.g. without Debian's libjemalloc2) or `system`.

Standard library only: it runs before anything imports TensorFlow.
"""

import ctypes.util
import os
import sys

VARIABLE = "KERAS_VAEGAN_MALLOC"
CHOICES = ("jemalloc", "system")
INSTALL_HINT = "apt-get install libjemalloc2"


def jemalloc_library():
    """The system's jemalloc as LD_PRELOAD takes it (e.g. libjemalloc.so.2), or None (none found, not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    return ctypes.util.find_library("jemalloc")


def allocator_environment(environ):
    """(allocator name, environment to start a process on it) for `environ`'s KERAS_VAEGAN_MALLOC.

    The name is `jemalloc`, or `glibc` when asked for (`system`) or when there is no jemalloc.
    Raises ValueError (one line naming the variable) for any other choice.
    """
    choice = environ.get(VARIABLE, "jemalloc")
    if choice not in CHOICES:
        raise ValueError(f"{VARIABLE}={choice!r}: expected one of {', '.join(CHOICES)}")
    library = jemalloc_library() if choice == "jemalloc" else None
    if library is None:
        return "glibc", dict(environ)
    preload = [entry for entry in environ.get("LD_PRELOAD", "").split(":") if entry and entry != library]
    return "jemalloc", dict(environ, LD_PRELOAD=":".join([library] + preload))


def jemalloc_loaded():
    """Whether jemalloc is mapped into this process."""
    try:
        with open("/proc/self/maps") as maps:
            return any("libjemalloc" in line for line in maps)
    except OSError:
        return False


def run_on_jemalloc(program):
    """Re-executes this process on jemalloc when KERAS_VAEGAN_MALLOC asks for it (the default) and it is not
    loaded yet; returns once it runs on its allocator. Without jemalloc it prints one line, naming `program`.
    Raises ValueError for a bad KERAS_VAEGAN_MALLOC."""
    choice = os.environ.get(VARIABLE, "jemalloc")
    if choice == "jemalloc" and jemalloc_loaded():
        return  # re-executed already (or preloaded by the user): no second library lookup
    name, environment = allocator_environment(os.environ)
    if name == "jemalloc":
        if os.environ.get("LD_PRELOAD") != environment["LD_PRELOAD"]:
            sys.stdout.flush()
            sys.stderr.flush()
            os.execve(sys.executable, [sys.executable] + sys.orig_argv[1:], environment)
        name = "glibc"  # preloaded, and yet the loader did not load it
    if name == "glibc" and choice == "jemalloc":
        print(f"{program}: jemalloc is not installed or did not load, running on glibc's malloc (about 100 MB "
              f"more memory at 64^3; {INSTALL_HINT})", file=sys.stderr, flush=True)
