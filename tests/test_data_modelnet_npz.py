"""The modelnet source's .npz files (voxels/labels/class_names and X_train/y_train), --classes, and the
orientation and framing of voxel files: on the real ModelNet10 training split in ../shared/data and on
small files built in tmp_path. Conversions run in-process (DirectRunner, in_memory)."""

import collections
import json
import os

import numpy as np
import pytest

from conftest import back_side, by_source_id, in_process, top_minus_all
from data_tools import voxel_frame
from data_tools.convert import ConvertError, convert
from data_tools.sources import Settings, modelnet
from data_tools.sources.common import array_grid
from keras_vaegan import data
from vaegan_utils import readers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
MODELNET10 = os.path.join(SHARED, "modelnet10-32-train.npz")
IN_PROCESS = ("DirectRunner", 1, "in_memory", "")


def run(input_path, out_dir, **options):
    options.setdefault("val_fraction", 0)
    options.setdefault("test_fraction", 0)
    return convert(Settings(source="modelnet", input_path=str(input_path), out_dir=str(out_dir), **options),
                   IN_PROCESS)


def voxels(record):
    return data.unpack_voxels(record["voxels"].numpy(), 32)


def ell(resolution=32, seed=0):
    """An L-shaped solid at a random place, different along every axis (so a turn or mirror shows)."""
    rng = np.random.default_rng(seed)
    grid = np.zeros((resolution,) * 3, np.uint8)
    x, y, z = rng.integers(2, 8, 3)
    grid[x:x + 12, y:y + 3, z:z + 20] = 1
    grid[x:x + 12, y:y + 8, z:z + 3] = 1
    return grid


def ells(count):
    return np.stack([ell(seed=i) for i in range(count)])


# ---------------------------------------------------------------- the real file


@pytest.fixture(scope="module")
def real_labels():
    """(count, labels, class names) of the real file."""
    return readers.read_voxel_labels(MODELNET10)


def test_real_file_is_listed_from_its_labels_without_reading_its_grids(real_labels, monkeypatch):
    def refuse(path):
        raise AssertionError(f"listing read the grids of {path}")

    monkeypatch.setattr(readers, "read_npz_grids", refuse)
    layout, tasks = modelnet.list_tasks(Settings(source="modelnet", input_path=MODELNET10, out_dir=""))
    count, labels, names = real_labels
    assert layout == "voxel arrays" and len(tasks) == count == 3991
    assert collections.Counter(task.class_name for task in tasks) == {
        "bathtub": 106, "bed": 515, "chair": 889, "desk": 200, "dresser": 200, "monitor": 465, "night_stand": 200,
        "sofa": 680, "table": 392, "toilet": 344}
    assert [task.class_name for task in tasks[:3]] == [names[k] for k in labels[:3]]


def test_npy_arrays_are_listed_from_their_header_alone(monkeypatch):
    def refuse(path):
        raise AssertionError(f"listing read the grids of {path}")

    monkeypatch.setattr(readers, "read_voxel_array", refuse)
    chairs = os.path.join(SHARED, "modelnet10-chair-32.npy.gz")
    _, tasks = modelnet.list_tasks(Settings(source="modelnet", input_path=chairs, out_dir=""))
    assert len(tasks) == 890 and {task.class_name for task in tasks} == {"chair"}


def test_real_classes_convert_with_the_file_s_counts(real_labels, tmp_path):
    """Bathtub and night_stand: 306 grids, of which 12 bathtubs are empty and one is a single voxel (skipped)."""
    _, labels, names = real_labels
    found, _ = run(MODELNET10, tmp_path / "out", classes=("bathtub", "night_stand"), val_fraction=0.1,
                   test_fraction=0.1)
    assert found["classes"] == ["bathtub", "night_stand"]
    assert (tmp_path / "out" / "classes.txt").read_text() == "bathtub\nnight_stand\n"
    kept = collections.Counter()
    for counts in found["counts"].values():
        kept.update(counts)
    skipped = json.load(open(tmp_path / "out" / "report.json"))["skipped"]
    lost = collections.Counter(names[labels[int(s["source_id"].rsplit("#", 1)[1])]] for s in skipped)
    assert kept + lost == {name: int((labels == names.index(name)).sum()) for name in ("bathtub", "night_stand")}
    assert lost == {"bathtub": 13} and found["records"] == 293
    records = by_source_id(tmp_path / "out", found)
    first = np.flatnonzero(labels == names.index("night_stand"))[0]
    record = records[f"modelnet/modelnet10-32-train.npz#{first:05d}"]
    assert record["class_name"].numpy().decode() == "night_stand"
    np.testing.assert_array_equal(voxels(record), voxel_frame.fit(array_grid(MODELNET10, first)))


# ---------------------------------------------------------------- layouts and --classes, on small files


def save_npz(path, **arrays):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def test_voxels_labels_class_names_layout_keeps_the_classes_asked_for(tmp_path):
    grids = ells(6)
    path = save_npz(tmp_path / "in" / "set.npz", voxels=grids, labels=np.array([0, 2, 1, 2, 0, 2], np.uint8),
                    class_names=np.array(["bed", "chair", "table"]))
    found, _ = run(path, tmp_path / "out", classes=("chair", "table"))
    assert found["classes"] == ["chair", "table"] and found["counts"]["train"] == {"chair": 1, "table": 3}
    records = by_source_id(tmp_path / "out", found)
    assert sorted(records) == [f"modelnet/set.npz#{i:05d}" for i in (1, 2, 3, 5)]
    assert records["modelnet/set.npz#00002"]["class_name"].numpy().decode() == "chair"
    for i in (1, 2, 3, 5):
        np.testing.assert_array_equal(voxels(records[f"modelnet/set.npz#{i:05d}"]), voxel_frame.fit(grids[i]))


def test_x_train_layout_names_classes_from_class_names_else_by_number(tmp_path):
    grids = ells(4)
    numbered = save_npz(tmp_path / "a" / "numbered.npz", X_train=grids, y_train=np.array([3, 0, 3, 3]))
    found, _ = run(numbered, tmp_path / "out-a")
    assert found["classes"] == ["class_0", "class_3"] and found["counts"]["train"] == {"class_0": 1, "class_3": 3}
    named = save_npz(tmp_path / "b" / "named.npz", X_train=grids, y_train=np.array([1, 0, 1, 1]),
                     class_names=np.array(["desk", "sofa"]))
    found, _ = run(named, tmp_path / "out-b", classes=("desk",))
    assert found["classes"] == ["desk"] and found["records"] == 1
    strings = save_npz(tmp_path / "c" / "strings.npz", X_train=grids[:, None].astype(np.float32),
                       y_train=np.array(["sofa", "desk", "sofa", "sofa"]))
    found, _ = run(strings, tmp_path / "out-c")
    assert found["classes"] == ["desk", "sofa"] and found["counts"]["train"] == {"desk": 1, "sofa": 3}


def test_unlabelled_npz_takes_the_class_of_its_file_as_arrays_do(tmp_path):
    path = save_npz(tmp_path / "in" / "modelnet10-bed-32.npz", voxels=ells(3))
    found, _ = run(path, tmp_path / "out", classes=("bed",))
    assert found["classes"] == ["bed"] and found["records"] == 3


def test_classes_filter_every_modelnet_input_kind(tmp_path):
    from conftest import boxes, save_npy_gz

    save_npy_gz(tmp_path / "in" / "chair" / "a.npy.gz", boxes(2))
    save_npy_gz(tmp_path / "in" / "table" / "b.npy.gz", boxes(3))
    save_npz(tmp_path / "in" / "more.npz", voxels=ells(2), labels=np.array([0, 1]),
             class_names=np.array(["chair", "sofa"]))
    found, _ = run(tmp_path / "in", tmp_path / "out", classes=("chair",))
    assert found["classes"] == ["chair"] and found["records"] == 3


# ---------------------------------------------------------------- orientation and framing


def frame_extents(grid):
    occupied = np.argwhere(grid)
    return occupied.min(axis=0), occupied.max(axis=0) + 1


def test_fit_spans_the_grid_centred_and_up_axis_swaps_that_axis_with_z(tmp_path):
    grid = ell()
    low, high = frame_extents(voxel_frame.fit(grid))
    assert (high - low).max() == 32 and np.all(np.abs(low - (32 - high)) <= 1)
    path = save_npz(tmp_path / "in" / "set.npz", voxels=grid[None], labels=np.array([0]),
                    class_names=np.array(["chair"]))
    for axis, expected in (("z", grid), ("y", grid.transpose(0, 2, 1)), ("x", grid.transpose(2, 1, 0))):
        found, _ = run(path, tmp_path / axis, voxel_up_axis=axis, voxel_framing="stored")
        (record,) = by_source_id(tmp_path / axis, found).values()
        np.testing.assert_array_equal(voxels(record), expected > 0)


def chair(resolution=16):
    """A chair ([x, y, z], z up) facing -y: a seat, and a back at +y rising above it."""
    grid = np.zeros((resolution,) * 3, bool)
    grid[3:13, 3:13, 5:7] = True
    grid[3:13, 11:13, 7:15] = True
    return grid


def test_a_quarter_turn_takes_plus_x_to_plus_y_and_plus_y_to_minus_x():
    grid = chair()
    assert back_side(grid) == "+y"
    for quarter_turns, side in ((1, "-x"), (2, "-y"), (3, "+x"), (-1, "+x"), (4, "+y"), (5, "-x")):
        assert back_side(voxel_frame.turned(grid, quarter_turns)) == side, quarter_turns
    one_turn = voxel_frame.turned(grid, 1)
    assert grid[12, 3, 6] and one_turn[12, 12, 6]  # the seat's corner at +x, -y goes to +y, +x
    assert np.array_equal(one_turn, [[grid[x, 15 - i] for x in range(16)] for i in range(16)])
    assert np.array_equal(voxel_frame.turned(one_turn, -1), grid) and one_turn.flags.c_contiguous


def real_class(labels, names, name):
    return [voxel_frame.to_frame(array_grid(MODELNET10, i)) for i in np.flatnonzero(labels == names.index(name))]


def test_default_frame_stands_real_chairs_beds_and_toilets_up_facing_minus_y(real_labels):
    """Measured on the real file: the top quarter of a chair (its back), bed (headboard) or toilet (tank) lies
    towards +y, behind the front, for 98%, 89% and 83% of them; towards -y for 1%, 4% and 11%."""
    _, labels, names = real_labels
    for name, share in (("chair", 0.95), ("bed", 0.85), ("toilet", 0.8)):
        leans = np.array([top_minus_all(grid) for grid in real_class(labels, names, name) if grid.any()])
        assert np.mean(leans[:, 1] > 0.5) >= share, name
        assert np.mean(np.abs(leans[:, 0]) > 0.5) < 0.2, name  # not towards either side


def test_default_framing_is_the_ikea_library_s(real_labels):
    """Every real shape spans the grid on its longest side and is centred, as the 225 IKEA models are."""
    _, labels, names = real_labels
    for grid in real_class(labels, names, "monitor")[:100]:
        if grid.any():
            low, high = frame_extents(grid)
            assert (high - low).max() == 32 and np.all(np.abs(low - (32 - high)) <= 1)


# ---------------------------------------------------------------- refusals


def refused(tmp_path, path, match, **options):
    out = tmp_path / "out"
    with pytest.raises(ConvertError, match=match):
        run(path, out, **options)
    assert not out.exists()


def test_bad_npz_files_and_classes_are_refused_before_anything_is_written(tmp_path):
    grids = ells(3)
    names = np.array(["bed", "chair"])
    refused(tmp_path, save_npz(tmp_path / "none.npz", shapes=grids), r"none.npz: holds shapes; expected voxels")
    refused(tmp_path, save_npz(tmp_path / "range.npz", voxels=grids, labels=np.array([0, 1, 2]), class_names=names),
            r"range.npz: labels run from 0 to 2, not indices into its 2 class_names")
    refused(tmp_path, save_npz(tmp_path / "count.npz", voxels=grids, labels=np.array([0, 1]), class_names=names),
            r"count.npz: labels has shape \(2,\), not one label for each of its 3 grids")
    refused(tmp_path, save_npz(tmp_path / "float.npz", X_train=grids, y_train=np.array([0.5, 1, 1])),
            r"float.npz: labels are float64, not class indices or names")
    good = save_npz(tmp_path / "good.npz", voxels=grids, labels=np.array([0, 1, 1]), class_names=names)
    refused(tmp_path, good, r"--classes: .*good.npz holds no lamp, sofa; its classes: bed, chair$",
            classes=("chair", "lamp", "sofa"))
    unlabelled = save_npz(tmp_path / "shapes.npz", voxels=grids)
    refused(tmp_path, unlabelled, r"--classes: .*shapes.npz holds no chair; its classes: shapes$", classes=("chair",))


def test_refusals_are_one_line_from_the_command(tmp_path, capsys):
    import data_tools.__main__ as command

    save_npz(tmp_path / "set.npz", voxels=ells(2), labels=np.array([0, 1]), class_names=np.array(["bed", "chair"]))
    run_command = in_process(command.main, command.FLAGS, capsys)
    for args, fragment in (
            (["--classes=chair,lamp"], "--classes: "),
            (["--voxel_up_axis=w"], "voxel_up_axis"),
    ):
        result = run_command("modelnet", f"--input={tmp_path / 'set.npz'}", f"--out={tmp_path / 'out'}", *args)
        lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert fragment in lines[0], lines[0]
    assert not (tmp_path / "out").exists()
