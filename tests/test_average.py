"""python -m keras_vaegan.average: the mean of a run's checkpoints as one model, and bad inputs."""

import os

import numpy as np
import tensorflow as tf

from conftest import assert_refused, run_cli, run_module, save_tiny_model
from keras_vaegan.model_file import load_trained_model


def average(*args):
    return run_module("keras_vaegan.average", *args)


def weights_at(model_path, prefix):
    model = load_trained_model(model_path)
    tf.train.Checkpoint(model=model).restore(prefix).expect_partial()
    return model.weights


def test_the_average_holds_the_mean_of_the_checkpoints_weights(trained_vaegan_run, tmp_path):
    model_path = os.path.join(trained_vaegan_run, "model.keras")
    checkpoints = os.path.join(trained_vaegan_run, "checkpoints")
    result = average(f"--model={model_path}", f"--checkpoints={checkpoints}", f"--out={tmp_path / 'mean.keras'}")
    assert result.returncode == 0, result.stderr
    assert "the mean of the weights of 2 checkpoints" in result.stdout and "averaging: 2/2" in result.stderr
    averaged = load_trained_model(str(tmp_path / "mean.keras"))
    at_2, at_4 = (weights_at(model_path, os.path.join(checkpoints, f"ckpt-{step}")) for step in (2, 4))
    changed = 0
    for mean, early, late in zip(averaged.weights, at_2, at_4):
        if mean.dtype == "int64":
            assert int(mean.numpy()) == int(late.numpy()) == 4  # the step counter: the newest checkpoint's
            continue
        np.testing.assert_allclose(mean.numpy(), (early.numpy() + late.numpy()) / 2, rtol=1e-6, atol=1e-7)
        changed += not np.array_equal(early.numpy(), late.numpy())
    assert changed > 10

    newest = average(f"--model={model_path}", f"--checkpoints={checkpoints}", "--last=1",
                     f"--out={tmp_path / 'last.keras'}")
    assert newest.returncode == 0, newest.stderr
    final = load_trained_model(model_path)  # written at step 4, as ckpt-4
    last = load_trained_model(str(tmp_path / "last.keras"))
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(final.weights, last.weights))


def refusal(capsys, *args):
    """The one `error:` line of keras_vaegan.average run in this process (exit code 2, no traceback)."""
    from keras_vaegan import average as cli

    argv = ["average", *map(str, args)]
    return assert_refused(*run_cli(cli.main, cli.FLAGS, argv, capsys), argv)


def test_bad_inputs_are_one_line_and_leave_the_output_alone(trained_vaegan_run, tmp_path, capsys):
    model_path = os.path.join(trained_vaegan_run, "model.keras")
    checkpoints = os.path.join(trained_vaegan_run, "checkpoints")
    out = tmp_path / "kept.keras"
    out.write_bytes(b"an earlier average")
    os.makedirs(tmp_path / "gan")
    gan = load_trained_model(save_tiny_model(str(tmp_path / "gan"), "gan"))
    tf.train.Checkpoint(model=gan).write(str(tmp_path / "gan" / "ckpt-1"))
    os.makedirs(tmp_path / "empty")
    cases = (
        ([f"--checkpoints={checkpoints}", f"--out={out}"], "error: --model is required"),
        ([f"--model={model_path}", f"--out={out}"], "error: --checkpoints is required"),
        ([f"--model={model_path}", f"--checkpoints={checkpoints}", f"--out={tmp_path / 'mean.h5'}"],
         f"error: --out: {tmp_path / 'mean.h5'} must end in .keras"),
        ([f"--model={model_path}", f"--checkpoints={checkpoints}", f"--out={tmp_path / 'no' / 'mean.keras'}"],
         f"error: --out: {tmp_path / 'no' / 'mean.keras'}: its folder does not exist"),
        ([f"--model={model_path}", f"--checkpoints={checkpoints}", f"--out={model_path}"],
         f"error: --out: {model_path} is --model; write the average beside it"),
        ([f"--model={model_path}", f"--checkpoints={model_path}", f"--out={out}"],
         f"error: --checkpoints: {model_path}: not a training checkpoint (no {model_path}.index) or a folder of them"),
        ([f"--model={model_path}", f"--checkpoints={tmp_path / 'empty'}", f"--out={out}"],
         f"error: --checkpoints: {tmp_path / 'empty'}: a folder without training checkpoints (no ckpt-N.index in it)"),
        ([f"--model={tmp_path / 'none.keras'}", f"--checkpoints={checkpoints}", f"--out={out}"],
         f"error: {tmp_path / 'none.keras'}: no such file"),
        ([f"--model={model_path}", f"--checkpoints={checkpoints}", "--last=-1", f"--out={out}"], "error: --last: "),
    )
    for args, expected in cases:
        assert refusal(capsys, *args).startswith(expected), args
    error = refusal(capsys, f"--model={model_path}", f"--checkpoints={checkpoints},{tmp_path / 'gan' / 'ckpt-1'}",
                    f"--out={out}")
    assert error.startswith(f"error: {tmp_path / 'gan' / 'ckpt-1'}: its weights do not fit --model {model_path} (")
    assert out.read_bytes() == b"an earlier average"
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".tmp-")]
