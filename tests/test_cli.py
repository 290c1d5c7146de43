"""The shared command-line helpers: one-line flag errors, exit 2, progress lines."""

import io

import pytest
from absl import flags

from vaegan_utils import cli


def _flag_values():
    values = flags.FlagValues()
    flags.DEFINE_string("out", None, "Output folder.", flag_values=values)
    flags.DEFINE_integer("count", 1, "How many.", flag_values=values)
    return values


@pytest.mark.parametrize("argv, expected", [
    (["prog", "--cuont=3"], "error: --cuont: unknown flag"),
    (["prog", "--count=three"], "error: --count: invalid literal for int() with base 10: 'three'"),
    (["prog", "--count"], "error: --count: missing value"),
    (["prog", "--count=2"], "error: --out is required"),
    (["prog", "--out=x", "stray"], "error: unexpected argument 'stray' (settings look like --name=value)"),
])
def test_bad_command_lines_are_one_line_and_exit_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_flags(_flag_values(), argv, required=("out",))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [expected]


def test_positional_arguments_are_returned_when_allowed():
    values = _flag_values()
    assert cli.parse_flags(values, ["prog", "inspect", "--out=x"], positional=1) == ["inspect"]
    assert values.out == "x"


def test_progress_counter_reports_each_tenth_once():
    stream = io.StringIO()
    progress = cli.ProgressCounter("convert", "samples", stream=stream)
    for done in range(1, 21):
        progress(done, 20)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("convert: 20/20 samples (100%), ")
    assert lines[-1].endswith("ETA 0 s")
