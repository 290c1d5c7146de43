"""bench.quality's inputs: labelled .npz files, classes, held-out files and settings are checked before training."""

import json

import numpy as np
import pytest

from bench import quality
from conftest import assert_refused, run_cli
from vaegan_utils import readers

MODELNET = quality.MODELNET


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


@pytest.fixture
def chairs(tmp_path):
    rng = np.random.default_rng(0)
    voxels = (rng.random((6, 32, 32, 32)) < 0.2).astype(np.uint8)
    return _npz(tmp_path / "chairs.npz", voxels=voxels, labels=np.array([0, 0, 0, 1, 1, 1], np.uint8),
                class_names=np.array(["chair", "table"]))


def test_reads_the_real_modelnet_file_by_class():
    grids, labels, names = readers.read_labelled_voxels(MODELNET)
    assert grids.shape == (3991, 32, 32, 32) and grids.dtype == bool
    assert names[2] == "chair" and (labels == 2).sum() == 889
    chairs = quality.read_shapes(MODELNET, "chair", "input")
    assert len(chairs) == 889 and chairs.any(axis=(1, 2, 3)).all()


def test_x_train_layout_names_classes_by_label(tmp_path):
    path = _npz(tmp_path / "x.npz", X_train=np.zeros((3, 8, 8, 8), np.float32), y_train=np.array([5, 2, 5]))
    grids, labels, names = readers.read_labelled_voxels(path)
    assert names == ["class_2", "class_5"] and labels.tolist() == [1, 0, 1] and grids.shape == (3, 8, 8, 8)


def test_held_out_share_is_about_a_tenth_and_fixed():
    mask = quality.held_out(889)
    assert 0.07 < np.mean(mask) < 0.13
    assert mask == quality.held_out(889)
    assert mask[:100] == quality.held_out(100)  # an index's side does not depend on the file's length


def _refusal(argv, capsys):
    code, captured = run_cli(quality.main, quality.FLAGS, ["quality", *argv], capsys)
    return assert_refused(code, captured, argv)


@pytest.mark.parametrize(
    "make, args, fragment",
    [
        (lambda tmp: _npz(tmp / "bad.npz", grids=np.zeros((2, 8, 8, 8))), [], "expected voxels (with labels"),
        (lambda tmp: str(tmp / "missing.npz"), [], "is not a file"),
        (None, ["--class_name=lamp"], "no class 'lamp'"),
        (None, ["--model_type=vaegan", "--latent_std=1"], "--model_type"),
        (None, ["--ema_momentum=1.5"], "--ema_momentum"),
        (None, ["--budget_minutes=0"], "--budget_minutes"),
        (None, ["--resolution=64"], "grids of 32^3"),
        (lambda tmp: _npz(tmp / "labels.npz", voxels=np.zeros((2, 8, 8, 8)), labels=np.array([0, 3]),
                          class_names=np.array(["a"])), [], "not indices"),
    ],
)
def test_bad_inputs_are_one_line(tmp_path, chairs, capsys, make, args, fragment):
    source = make(tmp_path) if make else chairs
    line = _refusal([f"--input={source}", *args], capsys)
    assert fragment in line, line
    if "lamp" in fragment:
        assert "chair, table" in line  # the classes the file holds


def test_a_heldout_file_of_another_resolution_is_named(tmp_path, chairs, capsys):
    other = _npz(tmp_path / "big.npz", voxels=np.zeros((2, 64, 64, 64), np.uint8), labels=np.zeros(2, np.uint8),
                 class_names=np.array(["chair"]))
    line = _refusal([f"--input={chairs}", f"--heldout={other}"], capsys)
    assert other in line and "64^3" in line


def test_training_stops_at_the_budget_or_at_train_steps_whichever_comes_first():
    import keras

    def fit(budget, max_steps):
        model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
        evaluations = []
        clock = quality.TrainingClock(budget, 3600, lambda *args: evaluations.append(args), max_steps)
        model.fit(np.zeros((64, 2)), np.zeros((64, 1)), batch_size=2, epochs=1, verbose=0, callbacks=[clock])
        return clock, evaluations

    clock, evaluations = fit(budget=3600, max_steps=5)
    assert clock.steps == 5 and not evaluations
    clock, _ = fit(budget=0, max_steps=1000)  # a budget spent at once: one step
    assert clock.steps == 1
    clock, _ = fit(budget=3600, max_steps=1000)  # neither reached: the data ends the run
    assert clock.steps == 32


def test_a_short_run_keeps_the_averaged_model_and_prints_quality_lines(tmp_path, capsys):
    work = tmp_path / "work"
    code, captured = run_cli(quality.main, quality.FLAGS, [
        "quality", "--train_steps=2", "--batch_size=4", "--samples=4", "--ema_momentum=0.9",
        "--precision=float32", f"--work_dir={work}"], capsys)
    assert code == 0, captured.err[-2000:]
    assert "budget 30 min of training or 2 steps, whichever comes first" in captured.out
    lines = dict(line.split()[1:] for line in captured.out.splitlines() if line.startswith("QUALITY "))
    assert {"coverage_iou", "mmd_iou", "one_nna_iou", "empty_fraction"} <= set(lines)
    history = json.loads((work / "quality.json").read_text())["history"]
    assert [entry["steps"] for entry in history] == [2]
    assert set(history[0]) == {"minutes", "steps", "split", "split_raw_G"}  # the averaged G and the raw one
    from keras_vaegan.model_file import load_trained_model

    assert load_trained_model(str(work / "model.keras")).resolution == 32
    assert (work / "quality_nearest.png").is_file()


# ---------------------------------------------------------------- bench.quality_figure


def _quality_json(path, coverages, references=True):
    history = [{"minutes": 5.0 * (i + 1), "steps": 100 * (i + 1),
                "split": {"coverage_iou": value, "mmd_iou": 0.9 - value / 2}} for i, value in enumerate(coverages)]
    run = {"settings": "made up", "history": history}
    if references:
        run["references"] = {"split": {"ceiling": {"coverage_iou": 0.6, "mmd_iou": 0.7},
                                       "floor": {"coverage_iou": 0.01, "mmd_iou": 0.87}}}
    path.write_text(json.dumps(run))
    return str(path)


def test_the_figure_draws_each_run_and_the_first_runs_baselines(tmp_path):
    from PIL import Image

    from bench import quality_figure

    recipe = _quality_json(tmp_path / "recipe.json", [0.2, 0.3, 0.35])
    paper = _quality_json(tmp_path / "paper.json", [0.01, 0.02], references=False)  # written before baselines
    out = tmp_path / "curves.png"
    assert quality_figure.main(["quality_figure", "--out", str(out), f"recipe={recipe}", f"paper={paper}"]) == 0
    pixels = np.asarray(Image.open(out).convert("RGB"))
    assert pixels.shape[1:] == (2 * quality_figure.PANEL[0], 3) and pixels.shape[0] > quality_figure.PANEL[1]
    panels, legend = pixels[: quality_figure.PANEL[1]], pixels[quality_figure.PANEL[1]:]
    for color in quality_figure.COLORS[:2]:
        assert (panels == color).all(axis=-1).sum() > 20  # both runs' curves
        assert (legend == color).all(axis=-1).sum() > 20  # and their names under the panels
    assert (pixels == (150, 150, 150)).all(axis=-1).sum() > 100  # the dashed baselines


@pytest.mark.parametrize("content, fragment", [("{", "not a bench.quality quality.json"),
                                               ('{"history": []}', "no evaluation")])
def test_the_figure_names_a_bad_quality_json(tmp_path, capsys, content, fragment):
    from bench import quality_figure

    bad = tmp_path / "bad.json"
    bad.write_text(content)
    argv = ["quality_figure", "--out", str(tmp_path / "x.png"), f"run={bad}"]
    with pytest.raises(SystemExit) as raised:
        quality_figure.main(argv)
    line = assert_refused(raised.value.code, capsys.readouterr(), argv)
    assert str(bad) in line and fragment in line
    assert not (tmp_path / "x.png").exists()
