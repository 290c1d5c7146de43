"""The shared command-line helpers: one-line flag errors, exit 2, progress lines."""

import dataclasses
import io
import sys

import pytest
from absl import flags

from keras_vaegan import config
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
        cli.parse_flags(_flag_values(), argv, "prog: does a thing", required=("out",))
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [expected]


def test_positional_arguments_are_returned_when_allowed():
    values = _flag_values()
    assert cli.parse_flags(values, ["prog", "inspect", "--out=x"], "prog: does a thing", positional=1) == ["inspect"]
    assert values.out == "x"


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_the_usage_and_every_flag_and_exits_0(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_flags(_flag_values(), ["prog", "--cuont=3", flag], "prog: does a thing", required=("out",))
    assert exit_info.value.code == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out.splitlines()[:3] == ["prog: does a thing", "", "flags:"]
    assert "  --out  Output folder. (required)" in out
    assert "  --count  How many. (default: 1)" in out
    assert "--flagfile=FILE" in out


def test_help_without_a_usage_shows_the_running_programs_docstring(capsys, monkeypatch):
    monkeypatch.setattr(sys.modules["__main__"], "__doc__", "bench: measures a thing")
    with pytest.raises(SystemExit) as exit_info:
        cli.parse_flags(_flag_values(), ["bench", "--help"])  # as the bench scripts call it
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.splitlines()[:3] == ["bench: measures a thing", "", "flags:"]


@dataclasses.dataclass(frozen=True)
class _Settings:
    size: int = config.setting(4, "Edge in voxels.", (4, 8))
    rate: float = config.setting(0.5, "A share.")
    name: str = config.setting("a", "What it is called.")
    fast: bool = config.setting(False, "Skip the slow part.")


def test_config_flags_carry_the_fields_defaults_help_and_choices(capsys):
    values = flags.FlagValues()
    cli.define_config_flags(values, _Settings)
    values(["prog"])
    assert cli.config_from_flags(values, _Settings) == _Settings()
    values.unparse_flags()
    values(["prog", "--size=8", "--rate=0.25", "--name=b", "--fast"])
    assert cli.config_from_flags(values, _Settings) == _Settings(size=8, rate=0.25, name="b", fast=True)
    with pytest.raises(SystemExit):
        cli.parse_flags(values, ["prog", "--size=5"], "prog")
    assert capsys.readouterr().err.strip() == "error: --size: value should be one of <4|8>"
    text = cli.help_text(values, "prog")
    assert "  --size=4|8  Edge in voxels. (default: 4)" in text
    assert "  --[no]fast  Skip the slow part. (default: false)" in text


def test_a_config_field_without_help_text_is_refused():
    @dataclasses.dataclass
    class Bare:
        size: int = 4

    with pytest.raises(TypeError, match="Bare.size has no help text"):
        cli.define_config_flags(flags.FlagValues(), Bare)


def test_progress_counter_reports_each_tenth_once():
    stream = io.StringIO()
    progress = cli.ProgressCounter("convert", "samples", stream=stream)
    for done in range(1, 21):
        progress(done, 20)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 10
    assert lines[-1].startswith("convert: 20/20 samples (100%), ")
    assert lines[-1].endswith("ETA 0 s")
