"""What every command-line entry point shares: flag parsing and the one-line error.

Imports only the standard library and absl, so the edge inference CLI can use it
without loading TensorFlow.
"""

import dataclasses
import os
import re
import sys
import textwrap
import time

from absl import flags

HELP_FLAGS = ("-h", "--help", "-help", "--helpfull")


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


def parse_flags(flag_values, argv, usage=None, required=(), positional=0):
    """Parses argv into flag_values; a bad flag, a missing required one or a stray argument
    is one line and exit 2, `-h`/`--help` prints `usage` (default: the running program's docstring)
    and every flag, exit 0. Returns the positional arguments (at most `positional`)."""
    if any(arg in HELP_FLAGS for arg in argv[1:]):
        usage = usage if usage is not None else getattr(sys.modules["__main__"], "__doc__", None) or argv[0]
        _print_help(help_text(flag_values, usage, required))
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


def _print_help(text):
    """Prints `text` and exits 0, quietly when the reader stops early (`--help | head`)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(0)


def console_entry(main):
    """The function a console script calls: exits with `main(sys.argv)`'s return value."""

    def run():
        sys.exit(main(sys.argv))

    return run


def help_text(flag_values, usage, required=()):
    """`usage`, then every flag in the order defined: its meaning, its default or that it is required."""
    lines = [textwrap.dedent(usage).strip(), "", "flags:"]
    seen = set()
    for flag in (flag for module in flag_values.flags_by_module_dict().values() for flag in module):
        if flag.name in seen:
            continue
        seen.add(flag.name)
        name = f"--[no]{flag.name}" if flag.boolean else f"--{flag.name}"
        meaning = flag.help
        choices = getattr(flag.parser, "enum_values", None)
        if choices:
            name += f"={'|'.join(choices)}"
            meaning = meaning.removeprefix(f"<{'|'.join(choices)}>: ")  # absl's own note of the choices
        if flag.name in required:
            default = "required"
        elif flag.default in (None, "", []):
            default = "default: none"
        else:
            default = f"default: {flag.default_as_str.strip(chr(39))}"
        lines.append(textwrap.fill(f"{name}  {meaning} ({default})", 100, initial_indent="  ", break_on_hyphens=False,
                                   subsequent_indent="      "))
    lines.append(textwrap.fill("--flagfile=FILE  Reads more flags from FILE, one --name=value a line.", 100,
                               initial_indent="  ", subsequent_indent="      "))
    return "\n".join(lines)


def define_config_flags(flag_values, config_class):
    """One flag per field of the dataclass `config_class`, named like the field, with the field's default,
    its `metadata["help"]` and, when given, its `metadata["choices"]`; a tuple field is a comma-separated list."""
    for field in dataclasses.fields(config_class):
        help_ = field.metadata.get("help")
        if not help_:
            raise TypeError(f"{config_class.__name__}.{field.name} has no help text (metadata['help'])")
        choices = field.metadata.get("choices")
        kind = _field_type(field)
        if choices:
            flags.DEFINE_enum(field.name, str(field.default), [str(c) for c in choices], help_,
                              flag_values=flag_values)
        elif kind is bool:
            flags.DEFINE_boolean(field.name, field.default, help_, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(field.name, field.default, help_, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(field.name, field.default, help_, flag_values=flag_values)
        elif kind is str:
            flags.DEFINE_string(field.name, field.default, help_, flag_values=flag_values)
        elif kind is tuple:
            flags.DEFINE_list(field.name, list(field.default), help_, flag_values=flag_values)
        else:
            raise TypeError(f"{config_class.__name__}.{field.name}: no flag type for {field.type!r}")


def config_from_flags(flag_values, config_class):
    """The `config_class` whose fields are the parsed flags of the same names (choices in the field's type)."""
    return config_class(**{
        field.name: _field_type(field)(flag_values[field.name].value) for field in dataclasses.fields(config_class)
    })


def _field_type(field):
    """A field's type as a class, whether annotated with the class or its name."""
    names = {kind.__name__: kind for kind in (bool, int, float, str, tuple)}
    return names.get(field.type, field.type) if isinstance(field.type, str) else field.type


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
