"""vaegan_utils.allocator: training re-executes itself on jemalloc, or says why it cannot."""

import os
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, default_malloc_environment
from vaegan_utils import allocator

needs_jemalloc = pytest.mark.skipif(allocator.jemalloc_library() is None,
                                    reason="no jemalloc (scripts/setup_env.sh installs Debian's libjemalloc2)")


def test_system_keeps_the_environment_as_it_is():
    environ = {"KERAS_VAEGAN_MALLOC": "system", "LD_PRELOAD": "libother.so"}
    assert allocator.allocator_environment(environ) == ("glibc", environ)


@needs_jemalloc
def test_jemalloc_goes_first_in_ld_preload_once():
    library = allocator.jemalloc_library()
    name, environment = allocator.allocator_environment({"LD_PRELOAD": f"libother.so:{library}", "HOME": "/h"})
    assert name == "jemalloc"
    assert environment == {"LD_PRELOAD": f"{library}:libother.so", "HOME": "/h"}


def test_without_jemalloc_the_default_falls_back_to_glibc(monkeypatch, capsys):
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)
    monkeypatch.delenv("KERAS_VAEGAN_MALLOC", raising=False)
    assert allocator.allocator_environment({"HOME": "/h"}) == ("glibc", {"HOME": "/h"})
    allocator.run_on_jemalloc("train")  # returns: nothing to re-execute on
    assert capsys.readouterr().err.splitlines() == [
        "train: jemalloc is not installed or did not load, running on glibc's malloc (about 100 MB more memory "
        "at 64^3; apt-get install libjemalloc2)"]


def test_an_unknown_choice_is_refused():
    with pytest.raises(ValueError, match=r"^KERAS_VAEGAN_MALLOC='tcmalloc': expected one of jemalloc, system$"):
        allocator.allocator_environment({"KERAS_VAEGAN_MALLOC": "tcmalloc"})


PROBE = textwrap.dedent(
    """
    import os, sys
    print("pid", os.getpid(), flush=True)
    from vaegan_utils import allocator
    allocator.run_on_jemalloc("probe")
    print("pid", os.getpid(), "jemalloc", allocator.jemalloc_loaded(), sys.argv[1:])
    """
)


def _probe(tmp_path, **environment):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    env = default_malloc_environment(PYTHONPATH=ROOT, **environment)
    return subprocess.run([sys.executable, str(script), "--flag=a b"], capture_output=True, text=True, env=env,
                          timeout=60)


@needs_jemalloc
def test_the_process_reexecutes_itself_on_jemalloc_with_its_pid_and_arguments(tmp_path):
    process = _probe(tmp_path)
    assert process.returncode == 0, process.stderr
    first, second, third = process.stdout.splitlines()
    pid = first.split()[1]
    assert second == first  # the same program again, in the same process
    assert third == f"pid {pid} jemalloc True ['--flag=a b']"


def test_system_runs_on_glibc_without_reexecuting(tmp_path):
    process = _probe(tmp_path, KERAS_VAEGAN_MALLOC="system")
    assert process.returncode == 0, process.stderr
    first, second = process.stdout.splitlines()
    assert second == f"{first} jemalloc False ['--flag=a b']"
    assert process.stderr == ""


def test_train_refuses_an_unknown_allocator_in_one_line():
    env = dict(os.environ, KERAS_VAEGAN_MALLOC="tcmalloc")
    process = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--help"], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=60)
    assert process.returncode == 2
    assert process.stderr.strip() == "error: KERAS_VAEGAN_MALLOC='tcmalloc': expected one of jemalloc, system"
