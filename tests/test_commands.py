"""Every command: listed as a console script, `--help`/`-h` print the usage and every flag with its default or
that it is required (exit 0), and flag errors come before TensorFlow is imported (as a program)."""

import configparser
import importlib
import os
import subprocess
import sys

import pytest

from conftest import in_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Console script: (module, how the README starts it).
COMMANDS = {
    "keras-vaegan-train": ("train", "train.py"),
    "keras-vaegan-data": ("data_tools.__main__", "-m data_tools"),
    "keras-vaegan-synthetic": ("data_tools.synthetic", "-m data_tools.synthetic"),
    "keras-vaegan-ikea-renders": ("data_tools.ikea_renders", "-m data_tools.ikea_renders"),
    "keras-vaegan-evaluate": ("keras_vaegan.evaluate", "-m keras_vaegan.evaluate"),
    "keras-vaegan-report": ("keras_vaegan.report", "-m keras_vaegan.report"),
    "keras-vaegan-average": ("keras_vaegan.average", "-m keras_vaegan.average"),
    "keras-vaegan-convert": ("keras_vaegan.convert", "-m keras_vaegan.convert"),
    "keras-vaegan-export": ("export.__main__", "-m export"),
    "keras-vaegan-infer": ("export.infer", "-m export.infer"),
}

# Runs a command as `python -m`/`python file.py` would, then says on stderr whether TensorFlow was loaded.
PROBE = """
import runpy, sys
target, *sys.argv[1:] = sys.argv[1:]
sys.argv[0] = target
try:
    if target.endswith(".py"):
        runpy.run_path(target, run_name="__main__")
    else:
        runpy.run_module(target, run_name="__main__", alter_sys=True)
finally:
    print(f"tensorflow loaded: {'tensorflow' in sys.modules}", file=sys.stderr)
"""


def probe(started_as, *args):
    """Runs a command as the README starts it (`-m module` or `file.py`) in a new process; the CompletedProcess."""
    target = started_as.removeprefix("-m ")
    env = dict(os.environ, PYTHONPATH=ROOT)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # a user's shell: TensorFlow's start-up lines would show
    return subprocess.run([sys.executable, "-c", PROBE, target, *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT, env=env)


def test_every_command_is_a_console_script_of_its_run_function():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    scripts = dict(line.split(" = ") for line in config["options.entry_points"]["console_scripts"].strip().splitlines())
    assert scripts == {name: f"{module}:run" for name, (module, _) in COMMANDS.items()}
    for module, _ in COMMANDS.values():
        command = importlib.import_module(module)
        assert callable(command.run) and command.__doc__.strip(), module


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_help_prints_the_usage_and_every_flag_with_its_default(script, flag, capsys):
    command = importlib.import_module(COMMANDS[script][0])
    result = in_process(command.main, command.FLAGS, capsys)(flag)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert result.stdout.startswith(command.__doc__.strip().splitlines()[0])
    entries = {entry.split()[0].lstrip("-").split("=")[0].replace("[no]", ""): " ".join(entry.split())
               for entry in result.stdout.split("\nflags:\n", 1)[1].split("\n  --")}
    defined = {flag.name for module_flags in command.FLAGS.flags_by_module_dict().values() for flag in module_flags}
    assert set(entries) == defined | {"flagfile"}
    for name, entry in entries.items():
        assert "(default: " in entry or "(required)" in entry or name == "flagfile", entry


# The commands no other test starts as a program (the others: train.py, data_tools, data_tools.synthetic, report,
# average, convert and export.infer are run as programs by their own tests).
@pytest.mark.parametrize("script", ["keras-vaegan-evaluate", "keras-vaegan-export", "keras-vaegan-ikea-renders"])
def test_help_as_a_program(script, capsys):
    module, started_as = COMMANDS[script]
    result = probe(started_as, "--help")
    assert result.returncode == 0, result.stderr
    command = importlib.import_module(module)
    assert result.stdout.strip() == in_process(command.main, command.FLAGS, capsys)("--help").stdout.strip()


def _assert_flag_error_first(script):
    _, started_as = COMMANDS[script]
    result = probe(started_as, "--no_such_flag=1")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: --no_such_flag: unknown flag", "tensorflow loaded: False"]


@pytest.mark.parametrize("script", sorted(COMMANDS))
def test_a_flag_error_is_the_first_line_and_loads_no_tensorflow(script):
    _assert_flag_error_first(script)
