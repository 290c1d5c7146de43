"""What every command-line entry point shares: flag parsing and the one-line error.

Imports only the standard library and absl, so the edge inference CLI can use it
without loading TensorFlow.
"""

import re
import sys
import time

from absl import flags


class UsageError(ValueError):
    """A bad input the user can fix; its message is the one line they see."""


def fail(message):
    """Prints `error: <message>` on stderr and exits with code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def flag_problem(error):
    """An absl parsing error as `--flag: problem`."""
    if isinstance(error, flags.UnrecognizedFlagError):
        return f"--{error.flagname}: unknown flag"
    text = str(error).splitlines()[0].removeprefix("ERROR:: ")
    missing = re.match(r"Missing value for flag (--\w+)", text)
    if missing:
        return f"{missing[1]}: missing value"
    bad = re.match(r"flag (--\w+)=[^:]*: (.*)", text)
    return f"{bad[1]}: {bad[2]}" if bad else text


def parse_flags(flag_values, argv, required=(), positional=0):
    """Parses argv into flag_values; a bad flag, a missing required one or a stray argument
    is one line and exit 2. Returns the positional arguments (at most `positional`)."""
    try:
        rest = flag_values(argv)[1:]
    except flags.Error as error:
        fail(flag_problem(error))
    except UnicodeDecodeError as error:  # absl reads a --flagfile as UTF-8 text
        fail(f"--flagfile: not a text file ({error.reason} at byte {error.start})")
    if len(rest) > positional:
        fail(f"unexpected argument {rest[positional]!r} (settings look like --name=value)")
    for name in required:
        if flag_values[name].value in (None, ""):
            fail(f"--{name} is required")
    return rest


class ProgressCounter:
    """Prints `label: done/total unit (pct%), rate/s, ETA` to stderr at every tenth of the work."""

    def __init__(self, label, unit, stream=None):
        self.label, self.unit = label, unit
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.reported = 0

    def __call__(self, done, total):
        tenth = done * 10 // max(total, 1)
        if tenth == self.reported:
            return
        self.reported = tenth
        rate = done / max(time.monotonic() - self.start, 1e-9)
        print(f"{self.label}: {done}/{total} {self.unit} ({done * 100 // max(total, 1)}%), {rate:.1f}/s, "
              f"ETA {(total - done) / max(rate, 1e-9):.0f} s", file=self.stream, flush=True)
