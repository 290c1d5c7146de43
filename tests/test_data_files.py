"""The `files` source (any folder of meshes or binvox files) and ModelNet .off meshes, on the real
meshes and binvox files in ../shared/data, with broken and degenerate files added."""

import json
import os
import shutil

import numpy as np
import pytest

from conftest import by_source_id
from data_tools.convert import ConvertError, convert
from data_tools.sources import Settings
from keras_vaegan import data
from vaegan_utils import readers
from vaegan_utils.resample import resample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
MESHES = os.path.join(SHARED, "meshes")
IN_PROCESS = ("DirectRunner", 1, "in_memory", "")


def run(source, input_path, out_dir, **options):
    options.setdefault("views", 0)
    options.setdefault("val_fraction", 0)
    options.setdefault("test_fraction", 0)
    settings = Settings(source=source, input_path=str(input_path), out_dir=str(out_dir), **options)
    return convert(settings, IN_PROCESS)


def voxels(record, resolution=32):
    return data.unpack_voxels(record["voxels"].numpy(), resolution)


@pytest.fixture
def folder(tmp_path):
    """chair/: two real OFF chairs, the ShapeNet OBJ (no .mtl), a real binvox; toilet/: the real toilet;
    odd/: a non-manifold OBJ; broken/: a truncated OFF and binvox, an empty OBJ, an STL of degenerate
    triangles."""
    root = tmp_path / "meshes"
    for name, target in [("modelnet-chair_0001.off", "chair/a.off"), ("modelnet-chair_0002.off", "chair/b.off"),
                         ("shapenet-model_normalized.obj", "chair/c.obj"), ("modelnet-toilet_0001.off", "toilet/t.off")]:
        os.makedirs(root / os.path.dirname(target), exist_ok=True)
        shutil.copy(os.path.join(MESHES, name), root / target)
    shutil.copy(os.path.join(SHARED, "binvox", "chair.binvox"), root / "chair" / "d.binvox")
    (root / "broken").mkdir()
    text = open(os.path.join(MESHES, "modelnet-chair_0002.off")).read()
    (root / "broken" / "cut.off").write_text(text[: len(text) // 2])
    (root / "broken" / "empty.obj").write_text("")
    binvox = open(os.path.join(SHARED, "binvox", "8a85.binvox"), "rb").read()
    (root / "broken" / "short.binvox").write_bytes(binvox[: len(binvox) - 101])
    (root / "odd").mkdir()
    (root / "odd" / "fin.obj").write_text(  # a tetrahedron with a fin: three faces on one edge (non-manifold)
        "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nv 1 1 1\nf 1 3 2\nf 1 2 4\nf 2 3 4\nf 3 1 4\nf 1 2 5\n")
    (root / "broken" / "flat.stl").write_text(
        "solid flat\n" + "".join(
            f"facet normal 0 0 0\nouter loop\nvertex {i} 0 0\nvertex {i} 0 0\nvertex {i} 0 0\nendloop\nendfacet\n"
            for i in range(3)) + "endsolid flat\n")
    return root


def test_folder_of_meshes_and_binvox_with_broken_files(folder, tmp_path):
    with pytest.raises(ConvertError, match=r"4 of 10 samples failed"):
        run("files", folder, tmp_path / "out")
    found, _ = run("files", folder, tmp_path / "out", max_error_rate=0.5)
    assert found["classes"] == ["broken", "chair", "odd", "toilet"]
    assert found["counts"]["train"] == {"chair": 4, "odd": 1, "toilet": 1}
    report = json.load(open(tmp_path / "out" / "report.json"))
    skipped = {os.path.basename(s["path"]): s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"cut.off", "short.binvox", "empty.obj", "flat.stl"}
    assert all(str(folder) in reason for reason in skipped.values()), skipped
    records = by_source_id(tmp_path / "out", found)
    binvox = readers.read_binvox(os.path.join(SHARED, "binvox", "chair.binvox"))
    np.testing.assert_array_equal(voxels(records["files/chair/d.binvox"]), resample(binvox, 32))
    for name in ("chair/a.off", "chair/b.off", "toilet/t.off"):
        grid = voxels(records[f"files/{name}"])
        assert 0.01 < grid.mean() < 0.5


def test_a_mesh_beside_its_binvox_takes_the_binvox_voxels(tmp_path):
    root = tmp_path / "pairs" / "chair"
    root.mkdir(parents=True)
    shutil.copy(os.path.join(MESHES, "modelnet-chair_0001.off"), root / "one.off")
    shutil.copy(os.path.join(SHARED, "binvox", "8a85.binvox"), root / "one.solid.binvox")
    found, _ = run("files", tmp_path / "pairs", tmp_path / "out")
    assert found["records"] == 1
    (record,) = by_source_id(tmp_path / "out", found).values()
    expected = resample(readers.read_binvox(os.path.join(SHARED, "binvox", "8a85.binvox")), 32)
    np.testing.assert_array_equal(voxels(record), expected)
    assert set(found["sources"]["files"]) == {"chair/one.off", "chair/one.solid.binvox"}


def test_modelnet_off_meshes_in_the_release_layout_stand_on_z(tmp_path):
    root = tmp_path / "ModelNet10"
    for class_name, split, name in [("chair", "train", "chair_0001.off"), ("chair", "test", "chair_0002.off"),
                                    ("toilet", "train", "toilet_0001.off")]:
        os.makedirs(root / class_name / split)
        shutil.copy(os.path.join(MESHES, f"modelnet-{name}"), root / class_name / split / name)
    found, _ = run("modelnet", root, tmp_path / "out", resolution=64)
    assert found["classes"] == ["chair", "toilet"] and found["records"] == 3
    assert found["layout"] == "off meshes"
    toilet = voxels(by_source_id(tmp_path / "out", found)["modelnet/toilet/train/toilet_0001.off"], 64)
    heights = np.nonzero(toilet.any(axis=(0, 1)))[0]
    assert heights.min() <= 1 and heights.max() >= 40  # stands on the floor, z up


def test_files_up_axis_turns_y_up_meshes_upright(tmp_path):
    root = tmp_path / "objs" / "birdhouse"
    root.mkdir(parents=True)
    shutil.copy(os.path.join(MESHES, "shapenet-model_normalized.obj"), root / "house.obj")
    grids = {}
    for axis in ("y", "z"):
        found, _ = run("files", tmp_path / "objs", tmp_path / axis, up_axis=axis)
        (record,) = by_source_id(tmp_path / axis, found).values()
        grids[axis] = voxels(record)
    np.testing.assert_array_equal(grids["y"], np.flip(grids["z"].transpose(0, 2, 1), axis=0))


def test_empty_folder_names_the_expected_layout(tmp_path):
    (tmp_path / "nothing").mkdir()
    with pytest.raises(ConvertError, match="no meshes or binvox files found; expected a folder of meshes"):
        run("files", tmp_path / "nothing", tmp_path / "out")
