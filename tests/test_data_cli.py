"""`python -m data_tools` as a user runs it: the default multi-process runner, inspect, re-runs; one-line
errors (in this process); and (large) train.py on the converted IKEA sample and ModelNet chairs."""

import os
import subprocess
import sys

import pytest

from conftest import in_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
IKEA = os.path.join(SHARED, "ikea-sample")
CHAIRS = os.path.join(SHARED, "modelnet10-chair-32.npy.gz")


def run(*args, script=("-m", "data_tools"), timeout=300):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, *script, *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def ikea_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "ikea"
    result = run("ikea", "--input", IKEA, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "wrote 60 records" in result.stdout
    assert "convert: 60/60 samples (100%)" in result.stderr
    assert "Traceback" not in result.stderr and "apache_beam" not in result.stderr
    return out


def test_convert_inspect_and_rerun(ikea_dataset):
    result = run("inspect", str(ikea_dataset))
    assert result.returncode == 0, result.stderr
    assert "verified 60 records in 3 shards: OK" in result.stdout
    assert (ikea_dataset / "contact_sheet.png").exists()
    again = run("ikea", "--input", IKEA, "--out", str(ikea_dataset))
    assert again.returncode == 0 and "already complete (60 records), nothing to do" in again.stdout


def test_bad_input_is_one_line(ikea_dataset, tmp_path, capsys, monkeypatch):
    import data_tools.__main__ as command

    monkeypatch.chdir(ROOT)
    run = in_process(command.main, command.FLAGS, capsys)
    assert_one_line_error(run("modelnet", "--input", str(tmp_path / "none"), "--out", str(tmp_path / "o")),
                          "none: no such file or directory (--input)")
    assert_one_line_error(run("modelnet", "--input", IKEA, "--out", str(ikea_dataset)),
                          "already holds a ikea dataset", "--overwrite")
    assert_one_line_error(run("meshes", "--input", IKEA), "meshes: expected one of ikea, shapenet")
    assert_one_line_error(run("inspect", str(tmp_path)), "no manifest.json")
    assert_one_line_error(run("ikea", "--input", IKEA, "--out", str(tmp_path / "o"), "--resolution=48"),
                          "--resolution: 48 is not one of 32, 64")
    for value in ("-1", "0.1", "nan", "inf"):
        assert_one_line_error(run("ikea", "--input", IKEA, "--out", str(tmp_path / "o"), f"--worker_memory_gb={value}"),
                              f"--worker_memory_gb: {float(value)} is not 0 (no limit) or in [0.5, 4096] GB")


@pytest.mark.large
def test_train_py_runs_on_converted_ikea_and_modelnet(ikea_dataset, tmp_path):
    chairs = tmp_path / "chairs"
    result = run("modelnet", "--input", CHAIRS, "--out", str(chairs))
    assert result.returncode == 0, result.stderr
    common = ["--train_steps=2", "--batch_size=2", "--checkpoint_every=2", "--sample_every=2"]
    vaegan = run(f"--data_dir={ikea_dataset / 'train'}", f"--model_dir={tmp_path / 'ikea_run'}", "--image_size=32",
                 *common, script=("train.py",), timeout=600)
    assert vaegan.returncode == 0, vaegan.stderr
    gan = run(f"--data_dir={chairs / 'train'}", f"--model_dir={tmp_path / 'chairs_run'}", "--model_type=gan",
              "--latent_prior=uniform", *common, script=("train.py",), timeout=600)
    assert gan.returncode == 0, gan.stderr
    assert (tmp_path / "ikea_run" / "model.keras").exists() and (tmp_path / "chairs_run" / "model.keras").exists()
