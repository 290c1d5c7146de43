"""The import contracts of setup.cfg ([importlinter]) hold, and lint-imports reports a broken one."""

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("export", "data_tools", "keras_vaegan", "vaegan_utils")


def lint_imports(root):
    """(exit code, report) of lint-imports on the packages under `root`, with the contracts of its setup.cfg."""
    command = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    result = subprocess.run([command, "setup.cfg", "--no-cache"], cwd=root, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(root), COLUMNS="500"))
    return result.returncode, result.stdout + result.stderr


def test_every_contract_is_kept():
    code, report = lint_imports(ROOT)
    assert code == 0 and "0 broken" in report, report


@pytest.mark.parametrize("module, forbidden_import, broken", [
    ("export/infer.py", "import tensorflow", "Edge inference and the base layer never import TensorFlow or Keras"),
    ("vaegan_utils/render.py", "from keras_vaegan import config", "Packages:"),
    ("keras_vaegan/data.py", "from export import exporter", "keras_vaegan never imports export or data_tools"),
    ("keras_vaegan/models.py", "from keras_vaegan import training", "keras_vaegan: commands, applications"),
    ("data_tools/convert.py", "from keras_vaegan import evaluate", "export and data_tools use the core"),
])
def test_a_forbidden_import_breaks_its_contract(tmp_path, module, forbidden_import, broken):
    for package in PACKAGES:
        shutil.copytree(os.path.join(ROOT, package), tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(os.path.join(ROOT, "setup.cfg"), tmp_path)
    with open(tmp_path / module, "a") as file:
        file.write(f"\n{forbidden_import}\n")
    code, report = lint_imports(tmp_path)
    assert code != 0, report
    assert any(line.startswith(broken) and line.endswith(" BROKEN") for line in report.splitlines()), report
