"""`pip install .[edge]` in a fresh venv: no TensorFlow or Keras there, and the edge CLI still turns a photo
into a shape with a `.tflite` file. Large: it downloads and installs the edge dependencies from PyPI."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from export import tflite
from keras_vaegan import ModelConfig, TrainConfig, build_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAIR = os.path.join(ROOT, "..", "shared", "data", "ikea-sample", "Images", "00000002_001.jpg")
PACKAGING = ("setup.cfg", "pyproject.toml", "README.md", "train.py")
PACKAGES = ("keras_vaegan", "export", "data_tools", "vaegan_utils")
HEAVY = ("tensorflow", "tensorflow-cpu", "keras", "tensorboard", "apache-beam", "open3d-cpu", "h5py", "torch")


def reconstruct_tflite(folder):
    """A tiny 3D-VAE-GAN's reconstruct_fp32.tflite (32^3, 32x32 photos) in `folder`; returns its path."""
    model = build_model(ModelConfig(resolution=32, latent_dim=16, image_size=32), TrainConfig(batch_size=2))
    saved = os.path.join(folder, "reconstruct_saved_model")
    tflite.write_saved_model(model, "reconstruct", saved)
    path = os.path.join(folder, "reconstruct_fp32.tflite")
    with open(path, "wb") as handle:
        handle.write(tflite.convert(saved, "tflite_fp32"))
    return path


def run(command, cwd):
    """The finished process of `command`, run in `cwd` without this checkout on PYTHONPATH."""
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.large
def test_edge_extra_runs_the_edge_cli_without_tensorflow(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    for package in PACKAGES:
        shutil.copytree(os.path.join(ROOT, package), source / package, ignore=shutil.ignore_patterns("__pycache__"))
    for name in PACKAGING:
        shutil.copy(os.path.join(ROOT, name), source)
    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    assert run([sys.executable, "-m", "venv", venv], tmp_path).returncode == 0
    install = run([python, "-m", "pip", "install", "-q", f"{source}[edge]"], tmp_path)
    assert install.returncode == 0, install.stderr

    listed = run([python, "-m", "pip", "list", "--format=json"], tmp_path)
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert {"keras-vaegan", "ai-edge-litert", "numpy", "pillow"} <= installed
    assert not installed & set(HEAVY), sorted(installed)
    for module in ("tensorflow", "keras"):
        probe = run([python, "-c", f"import {module}"], tmp_path)
        assert "ModuleNotFoundError" in probe.stderr, probe.stderr

    model = reconstruct_tflite(str(tmp_path))
    out = tmp_path / "out"
    done = run([python, "-m", "export.infer", "--model", model, "--image", CHAIR, "--out", out], tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(os.listdir(out)) == ["00000002_001.npy", "00000002_001.ply", "00000002_001.png"]
    assert np.load(out / "00000002_001.npy").shape == (32, 32, 32)
