"""Tests of data_tools.shapes and data_tools.synthetic: procedural furniture to TFRecords."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import distinct, figure_cells, foreground_share, in_process
from data_tools import synthetic
from data_tools.shapes import CLASSES, make_shape
from keras_vaegan import data
from keras_vaegan.augment import augment_photo

ROOT = os.path.join(os.path.dirname(__file__), "..")
SMALL = dict(resolution=32, shapes_per_class=2, views_per_shape=2, image_size=32, num_shards=2, seed=3)


def _shape(name, resolution=32, seed=0):
    return make_shape(name, resolution, np.random.default_rng(seed))


@pytest.mark.parametrize("resolution", [32, 64])
@pytest.mark.parametrize("name", CLASSES)
def test_shapes_are_solid_centred_on_the_floor_and_fill_the_grid(name, resolution):
    for seed in range(3):
        grid = _shape(name, resolution, seed)
        assert grid.shape == (resolution,) * 3 and grid.dtype == bool
        cells = np.argwhere(grid)
        low, high = cells.min(0), cells.max(0)
        assert low[2] == 0  # standing on the floor
        assert (high - low).max() >= resolution - 4  # the longest side spans the grid
        assert np.all(np.abs((low + high)[:2] / 2 - (resolution - 1) / 2) <= 1)  # centred horizontally


def test_shapes_are_deterministic_and_vary():
    assert np.array_equal(_shape("chair", seed=5), _shape("chair", seed=5))
    assert not all(np.array_equal(_shape("chair", seed=0), _shape("chair", seed=s)) for s in range(1, 4))


def test_classes_differ():
    grids = {name: _shape(name) for name in CLASSES}
    for a in CLASSES:
        for b in CLASSES:
            if a < b:
                iou = (grids[a] & grids[b]).sum() / (grids[a] | grids[b]).sum()
                assert iou < 0.8, (a, b)


def _extent(grid):
    cells = np.argwhere(grid)
    return cells.max(0) - cells.min(0) + 1


def _shelves(grid):
    """Horizontal boards: z levels with a full row across the front."""
    cells = np.argwhere(grid)
    front = cells[:, 1].min()
    x0, x1 = cells[:, 0].min(), cells[:, 0].max()
    full = grid[x0:x1 + 1, front, :].all(axis=0)
    return np.count_nonzero(np.diff(np.concatenate([[0], full.astype(int)])) == 1)


def _fill_at(grid, height):
    """Occupied fraction of the bounding box's horizontal section at a fraction of its height."""
    cells = np.argwhere(grid)
    (x0, y0, _), (x1, y1, z1) = cells.min(0), cells.max(0)
    return grid[x0:x1 + 1, y0:y1 + 1, round(z1 * height)].mean()


@pytest.mark.parametrize("seed", range(4))
def test_class_traits(seed):
    shapes = {name: _shape(name, 32, seed) for name in CLASSES}
    bookcase, chair, bed, sofa = shapes["bookcase"], shapes["chair"], shapes["bed"], shapes["sofa"]
    assert _extent(bookcase)[2] > _extent(bookcase)[0] and _shelves(bookcase) >= 4  # tall, with shelves
    assert _extent(chair)[2] > _extent(chair)[0]  # taller than wide
    headboard_top = np.argwhere(bed)[:, 2].max()
    assert np.argwhere(bed[:, :, headboard_top])[:, 1].min() > 24  # only the headboard at the back is high
    assert _extent(sofa)[0] > 1.5 * _extent(sofa)[2] and _fill_at(sofa, 0.3) > 0.9  # long, bulky
    assert _fill_at(shapes["table"], 0.5) < 0.1  # legs or a column under the top
    assert _fill_at(shapes["desk"], 0.5) > 2 * _fill_at(shapes["table"], 0.5)  # drawers and panels


def _mean_pairwise_iou(grids):
    return np.mean([(a & b).sum() / (a | b).sum() for i, a in enumerate(grids) for b in grids[i + 1:]])


@pytest.mark.parametrize("name", CLASSES)
def test_lower_variety_makes_a_class_more_alike_and_zero_makes_it_one_shape(name):
    def shapes(variety):
        return [make_shape(name, 32, np.random.default_rng(seed), variety) for seed in range(6)]

    full, narrow, none = shapes(1.0), shapes(0.3), shapes(0.0)
    assert _mean_pairwise_iou(narrow) > _mean_pairwise_iou(full)
    assert all(np.array_equal(none[0], grid) for grid in none[1:])
    assert np.array_equal(full[0], _shape(name, 32, 0))  # variety 1 draws exactly as before


@pytest.mark.parametrize("variety", [-0.1, 1.5])
def test_variety_outside_0_1_is_refused(variety):
    with pytest.raises(ValueError, match="variety"):
        make_shape("chair", 32, np.random.default_rng(0), variety)


def test_unknown_class():
    with pytest.raises(ValueError, match="unknown class"):
        _shape("lamp")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synthetic")
    count = synthetic.write_synthetic_dataset(str(out), **SMALL)
    return out, count


def _records(out):
    return [data.decode_example(r) for r in tf.data.TFRecordDataset(data.find_records(str(out)))]


def test_dataset_files(dataset):
    out, count = dataset
    assert count == len(CLASSES) * 2 * 2
    assert sorted(os.listdir(out)) == sorted(
        ["classes.txt", "preview.png", "train.tfrecord-00000-of-00002", "train.tfrecord-00001-of-00002"])
    assert (out / "classes.txt").read_text().split() == list(CLASSES)
    preview = np.asarray(Image.open(out / "preview.png"))
    assert preview.ndim == 3 and preview.shape[0] > preview.shape[1]  # one row per class, two columns


def test_records_hold_shapes_photos_and_labels(dataset):
    out, count = dataset
    records = _records(out)
    assert len(records) == count
    seen = set()
    for record in records:
        name = record["class_name"].numpy().decode()
        index = int(record["class_id"])
        assert CLASSES[index] == name
        source = record["source_id"].numpy().decode()
        assert source.startswith(f"synthetic/{name}/")
        voxels = data.unpack_voxels(record["voxels"].numpy(), int(record["resolution"]))
        assert voxels.shape == (32, 32, 32) and voxels[:, :, 0].any()
        photo = Image.open(io.BytesIO(record["image"].numpy()))
        assert photo.format == "JPEG" and photo.size == (32, 32) and photo.mode == "RGB"
        seen.add((source, record["image"].numpy()))
    assert len(seen) == count  # every view is a different photo


def test_make_dataset_reads_the_records(dataset):
    out, _ = dataset
    files = data.find_records(str(out))
    data.check_records(files, 32, need_images=True)
    batches = data.make_dataset(files, 32, batch_size=4, image_size=64, shuffle_buffer=0, repeat=False)
    images, voxels = next(iter(batches))
    assert images.shape == (4, 64, 64, 3) and voxels.shape == (4, 32, 32, 32, 1)
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 1.0
    assert float(tf.reduce_sum(voxels)) > 0
    # Autotuning stays off: deleting an iterator waits for its tuning thread, which sleeps up to a
    # minute, and training deletes one at every checkpoint (measured: up to 45 s per checkpoint).
    assert batches.options().autotune.enabled is False


def test_make_dataset_augments_photos_only_when_asked_and_repeatably(dataset):
    out, _ = dataset
    files = data.find_records(str(out))

    def first_images(**kwargs):
        batches = data.make_dataset(files, 32, batch_size=4, image_size=64, shuffle_buffer=0, repeat=False, **kwargs)
        return next(iter(batches))[0].numpy()

    plain = first_images()
    augmented = first_images(augment=True, seed=1)
    np.testing.assert_array_equal(augmented, first_images(augment=True, seed=1))
    assert np.abs(augmented - plain).mean() > 0.01
    assert np.abs(augmented - first_images(augment=True, seed=2)).mean() > 0.01
    for index, photo in enumerate(plain):  # each photo's faults come from the seed and its position
        expected = augment_photo(tf.constant(photo), tf.constant([1, index], tf.int64)).numpy()
        np.testing.assert_allclose(augmented[index], expected, atol=1e-6)


def test_same_seed_same_bytes_other_seed_other_bytes(dataset, tmp_path):
    out, _ = dataset
    again = tmp_path / "again"
    synthetic.write_synthetic_dataset(str(again), **SMALL)
    for name in os.listdir(out):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other = tmp_path / "other"
    synthetic.write_synthetic_dataset(str(other), **{**SMALL, "seed": 4})
    shard = "train.tfrecord-00000-of-00002"
    assert (out / shard).read_bytes() != (other / shard).read_bytes()


def _source_ids(out):
    return {record["source_id"].numpy().decode() for record in _records(out)}


def test_first_shape_continues_the_same_sequence_of_shapes(tmp_path):
    settings = {**SMALL, "views_per_shape": 1, "variety": 0.5}
    synthetic.write_synthetic_dataset(str(tmp_path / "all"), **{**settings, "shapes_per_class": 3})
    synthetic.write_synthetic_dataset(str(tmp_path / "first"), **{**settings, "shapes_per_class": 2})
    synthetic.write_synthetic_dataset(str(tmp_path / "later"), **{**settings, "shapes_per_class": 1, "first_shape": 2})
    first, later = _source_ids(tmp_path / "first"), _source_ids(tmp_path / "later")
    assert not first & later and first | later == _source_ids(tmp_path / "all")
    assert later == {f"synthetic/{name}/00002" for name in CLASSES}
    shapes = {record["source_id"].numpy().decode(): record["voxels"].numpy() for record in _records(tmp_path / "all")}
    for record in _records(tmp_path / "later"):
        assert record["voxels"].numpy() == shapes[record["source_id"].numpy().decode()]


@pytest.mark.parametrize("name, value", [
    ("resolution", 48), ("shapes_per_class", 0), ("views_per_shape", 0), ("image_size", 8),
    ("num_shards", 0), ("num_shards", 25), ("seed", -1), ("variety", 1.2), ("first_shape", -1),
])
def test_bad_arguments_name_the_flag(tmp_path, name, value):
    with pytest.raises(ValueError, match=f"^{name}: "):
        synthetic.write_synthetic_dataset(str(tmp_path / "out"), **{**SMALL, name: value})
    assert not (tmp_path / "out").exists()


def _run(*args):
    env = {**os.environ, "PYTHONPATH": os.path.abspath(ROOT)}
    return subprocess.run([sys.executable, "-m", "data_tools.synthetic", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("args, message", [
    (["--resolution=48"], "error: --resolution: 48 is not one of 32, 64"),
    (["--shapes_per_class=many"], "error: --shapes_per_class: "),
    (["--num_shard=2"], "error: --num_shard: unknown flag"),
])
def test_cli_bad_flag_is_one_line_and_exit_2(tmp_path, args, message, capsys):
    result = in_process(synthetic.main, synthetic.FLAGS, capsys)(f"--out={tmp_path / 'out'}", *args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith(message)
    assert not (tmp_path / "out").exists()


def test_cli_output_is_the_same_bytes_in_another_process(tmp_path, capsys):
    outputs = [tmp_path / "program", tmp_path / "this_process"]
    settings = ("--shapes_per_class=1", "--views_per_shape=1", "--num_shards=3")
    for out, run in zip(outputs, (_run, in_process(synthetic.main, synthetic.FLAGS, capsys))):
        result = run(f"--out={out}", *settings)
        assert result.returncode == 0, result.stderr
        assert "6/6 records (100%)" in result.stderr
    assert len(data.find_records(str(outputs[0]))) == 3
    rows = figure_cells(outputs[0] / "preview.png", 128)  # one row per class, its first shape
    assert len(rows) == len(CLASSES) and {len(row) for row in rows} == {1}
    shapes = [row[0] for row in rows]
    assert distinct(shapes) == len(CLASSES) and min(map(foreground_share, shapes)) > 0.05
    for name in sorted(os.listdir(outputs[0])):
        assert (outputs[0] / name).read_bytes() == (outputs[1] / name).read_bytes(), name
