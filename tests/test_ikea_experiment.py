"""scripts/ikea_experiment.sh: its argument errors (one line, exit 2) and, large, the whole experiment with tiny
settings, run twice: the second run renders, trains and scores nothing again.

The script runs in the environment running these tests (KERAS_VAEGAN_VENV), so nothing is installed."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "ikea_experiment.sh")
IKEA = os.path.join(ROOT, "..", "shared", "data", "ikea-sample")
MODELNET = os.path.join(ROOT, "..", "shared", "data", "modelnet10-32-train.npz")
TINY = {"IKEA_TRAIN_STEPS": "2",
        "IKEA_RENDER_FLAGS": "--views_per_model 1 --synthetic_per_class 0 --max_shapes_per_class 1 --num_shards 2"}


def run_script(*args, **env):
    """The finished `bash scripts/ikea_experiment.sh args` with `env` added to this process's environment."""
    environment = dict(os.environ, KERAS_VAEGAN_VENV=sys.prefix, PYTHONPATH=ROOT, **env)
    return subprocess.run(["bash", SCRIPT, *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          env=environment, timeout=900)


def refusal(result):
    """The one line of a refused run (exit 2, nothing else on stderr)."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ikea_experiment: "), result.stderr
    return lines[0].removeprefix("ikea_experiment: ")


def test_bad_arguments_are_refused_in_one_line_before_anything_is_written(tmp_path):
    tmp_path = tmp_path.resolve()  # as the script names its folders
    out = tmp_path / "out"
    empty = tmp_path / "photos"
    empty.mkdir()
    a_file = tmp_path / "file"
    a_file.write_text("")
    for args, env, expected in (
            (["--colour", IKEA, out], {}, "unknown option --colour (usage: bash scripts/ikea_experiment.sh"),
            (["--schedule", "both", IKEA, out], {}, "--schedule: both is not joint or separate"),
            (["--schedule"], {}, "--schedule needs a value"),
            ([IKEA], {}, "give PHOTOS_DIR and OUT_DIR"),
            ([tmp_path / "missing", out], {}, f"PHOTOS_DIR: {tmp_path / 'missing'} is not a folder"),
            ([IKEA, a_file], {}, f"OUT_DIR: {a_file} is not a folder"),
            ([IKEA, out], {"IKEA_TRAIN_STEPS": "1"}, "IKEA_TRAIN_STEPS: 1 is not a whole number >= 2"),
            ([IKEA, out], {"IKEA_TRAIN_STEPS": "many"}, "IKEA_TRAIN_STEPS: many is not a whole number >= 2"),
            ([empty, out], {}, f"PHOTOS_DIR: {empty}: not an IKEA dataset; expected the benchmark")):
        assert refusal(run_script(*args, **env)).startswith(expected), (args, env)
        assert not out.exists()


def test_help_prints_the_usage():
    result = run_script("--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: bash scripts/ikea_experiment.sh [--schedule")


def modified_times(out):
    """{path: mtime in ns} of what each step leaves: the shards and lists, the model and its checkpoints,
    the scores."""
    paths = [*glob.glob(f"{out}/data/*"), *glob.glob(f"{out}/heldout/*"), *glob.glob(f"{out}/model/checkpoints/*"),
             f"{out}/model/model.keras", f"{out}/metrics.json", f"{out}/table.md", f"{out}/classes/metrics.json"]
    return {path: os.stat(path).st_mtime_ns for path in paths}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    """(OUT_DIR, the finished run) of the joint schedule with tiny settings on the real photos."""
    out = tmp_path_factory.mktemp("experiment").resolve() / "out"  # as the script names it
    return out, run_script(IKEA, out, **TINY)


@pytest.mark.large
def test_the_experiment_renders_trains_and_scores_and_a_rerun_redoes_nothing(experiment):
    out, first = experiment
    assert first.returncode == 0, first.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    ap = metrics["average_precision"]
    assert metrics["photos"] == 60 and metrics["model"] == str(out / "model" / "model.keras")
    assert set(ap["model"]) == {"bed", "bookcase", "chair", "desk", "sofa", "table", "mean"}
    assert "model, best of 8 turns/mirrors" in ap
    assert any(name.startswith("model, photos of held-out models") for name in ap)  # heldout_models.txt read
    table = (out / "table.md").read_text()
    assert "| model |" in table and first.stdout.rstrip().endswith(table.rstrip())
    assert f"{out}/table.md" in first.stdout
    run = json.loads((out / "model" / "run.json").read_text())
    assert run["train"]["train_steps"] == 2 and run["train"]["schedule"] == "joint"
    rendered_with = (out / "data" / "rendered_with.txt").read_text().splitlines()
    assert ("--shapes" in rendered_with) == os.path.exists(MODELNET)
    assert rendered_with[-8:] == TINY["IKEA_RENDER_FLAGS"].split()
    assert len(glob.glob(f"{out}/data/train.tfrecord-*-of-00002")) == 2
    assert len(glob.glob(f"{out}/heldout/heldout.tfrecord-*-of-00002")) == 2  # rendered the same way
    probe = json.loads((out / "classes" / "metrics.json").read_text())
    assert list(probe["sets"]) == ["training", "held-out", "photos"] and probe["sets"]["photos"]["pictures"] == 60
    assert probe["train_data"] == str(out / "data") and probe["data"] == str(out / "heldout")
    assert f"{out}/classes/table.md" in first.stdout

    before = modified_times(out)
    second = run_script(IKEA, out, **TINY)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "is rendered already; keeping it" in second.stdout and "already trained to step 2" in second.stdout
    assert f"{out}/heldout is rendered already; keeping it" in second.stdout
    assert modified_times(out) == before
    assert second.stdout.rstrip().endswith(table.rstrip())

    other = run_script(IKEA, out, IKEA_TRAIN_STEPS="2", IKEA_RENDER_FLAGS="--views_per_model 2")
    assert refusal(other).startswith(f"OUT_DIR: {out}/data was rendered with other arguments")
    assert modified_times(out) == before


@pytest.mark.large
def test_the_separate_schedule_trains_g_and_d_first_on_renders_moved_from_another_out_dir(experiment, tmp_path):
    out, _ = experiment
    moved = tmp_path.resolve() / "separate"
    shutil.copytree(out / "data", moved / "data")
    result = run_script("--schedule=separate", IKEA, moved, IKEA_TRAIN_STEPS="4",
                        IKEA_RENDER_FLAGS=TINY["IKEA_RENDER_FLAGS"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is rendered already; keeping it" in result.stdout
    run = json.loads((moved / "model" / "run.json").read_text())
    assert (run["train"]["schedule"], run["train"]["pretrain_steps"], run["train"]["train_steps"]) == \
        ("separate", 2, 4)
    assert set(json.loads((moved / "metrics.json").read_text())["average_precision"]["model"]) >= {"chair", "mean"}
