"""The ShapeNetCore source: v1 and v2 layouts built from the real OBJ and binvox files, synset names,
and (when rendering) deterministic photos over background images."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import by_source_id
from data_tools.convert import ConvertError, convert
from data_tools.sources import Settings
from data_tools.sources.synsets import SYNSETS, class_name
from keras_vaegan import data
from vaegan_utils import readers
from vaegan_utils.resample import resample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
OBJ = os.path.join(SHARED, "meshes", "shapenet-model_normalized.obj")
CHAIR_BINVOX = os.path.join(SHARED, "binvox", "chair.binvox")
IN_PROCESS = ("DirectRunner", 1, "in_memory", "")


def run(input_path, out_dir, **options):
    options.setdefault("views", 0)
    options.setdefault("val_fraction", 0)
    options.setdefault("test_fraction", 0)
    return convert(Settings(source="shapenet", input_path=str(input_path), out_dir=str(out_dir), **options),
                   IN_PROCESS)


def place(source, target):
    os.makedirs(os.path.dirname(target), exist_ok=True)
    shutil.copy(source, target)


@pytest.fixture
def core_v2(tmp_path):
    """A birdhouse with its mesh only, a chair with mesh + solid binvox, a chair with a surface binvox only."""
    root = tmp_path / "ShapeNetCore.v2"
    place(OBJ, root / "02843684" / "1b73f96cf598ef492cba66dc6aeabcd4" / "models" / "model_normalized.obj")
    chair = root / "03001627" / "1a6f615e8b1b5ae4dbbc9440457e303e" / "models"
    place(OBJ, chair / "model_normalized.obj")
    place(CHAIR_BINVOX, chair / "model_normalized.solid.binvox")
    place(os.path.join(SHARED, "binvox", "8a85.binvox"),
          root / "03001627" / "8a85" / "models" / "model_normalized.surface.binvox")
    (root / "taxonomy.json").write_text("[]")
    return root


def test_synset_table_has_the_55_core_classes():
    assert len(SYNSETS) == 55
    assert [class_name(s) for s in ("03001627", "04379243", "04256520", "02818832", "02871439", "02691156",
                                    "02958343")] == ["chair", "table", "sofa", "bed", "bookshelf", "airplane", "car"]
    assert class_name("99999999") == "99999999"


def test_v2_layout_voxels_from_binvox_or_mesh(core_v2, tmp_path):
    found, _ = run(core_v2, tmp_path / "out")
    assert found["layout"] == "ShapeNetCore v2"
    assert found["classes"] == ["birdhouse", "chair"] and found["records"] == 3
    records = by_source_id(tmp_path / "out", found)
    assert set(records) == {"shapenet/02843684/1b73f96cf598ef492cba66dc6aeabcd4",
                            "shapenet/03001627/1a6f615e8b1b5ae4dbbc9440457e303e", "shapenet/03001627/8a85"}
    chair = data.unpack_voxels(records["shapenet/03001627/1a6f615e8b1b5ae4dbbc9440457e303e"]["voxels"].numpy(), 32)
    np.testing.assert_array_equal(chair, resample(readers.read_binvox(CHAIR_BINVOX), 32))
    house = data.unpack_voxels(records["shapenet/02843684/1b73f96cf598ef492cba66dc6aeabcd4"]["voxels"].numpy(), 32)
    heights = np.nonzero(house.any(axis=(0, 1)))[0]
    assert heights.min() == 0 and house.mean() > 0.05  # y-up mesh turned upright, interior filled


def test_v1_layout_and_a_single_synset_folder(tmp_path):
    root = tmp_path / "ShapeNetCore.v1" / "04379243"
    place(OBJ, root / "abc" / "model.obj")
    place(CHAIR_BINVOX, root / "abc" / "model.binvox")
    place(OBJ, root / "def" / "model.obj")
    found, _ = run(root, tmp_path / "out")
    assert found["layout"] == "ShapeNetCore v1" and found["classes"] == ["table"] and found["records"] == 2


def test_backgrounds_folder_without_photos_is_an_error(core_v2, tmp_path):
    (tmp_path / "sun").mkdir()
    with pytest.raises(ConvertError, match=r"sun: holds no .jpg, .jpeg or .png photos \(--backgrounds\)"):
        run(core_v2, tmp_path / "out", views=1, backgrounds=str(tmp_path / "sun"))


def test_folder_without_synsets_is_a_layout_error(tmp_path):
    (tmp_path / "meshes").mkdir()
    shutil.copy(OBJ, tmp_path / "meshes")
    with pytest.raises(ConvertError, match=r"no ShapeNetCore models found; expected ShapeNetCore v2 \(<synset>"):
        run(tmp_path / "meshes", tmp_path / "out")


def test_renders_over_backgrounds_are_deterministic(tmp_path):
    root = tmp_path / "ShapeNetCore.v2"
    place(OBJ, root / "02843684" / "1b73f96cf598ef492cba66dc6aeabcd4" / "models" / "model_normalized.obj")
    backgrounds = os.path.join(SHARED, "ikea-sample", "Images")
    images = {}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        found, _ = run(root, tmp_path / name, views=2, image_size=64, backgrounds=backgrounds, seed=seed)
        assert found["records"] == 2
        records = by_source_id(tmp_path / name, found)
        assert sorted(records) == [f"shapenet/02843684/1b73f96cf598ef492cba66dc6aeabcd4/view{v:02d}" for v in (0, 1)]
        images[name] = [records[key]["image"].numpy() for key in sorted(records)]
    assert images["a"] == images["b"]
    assert images["a"] != images["c"] and images["a"][0] != images["a"][1]
    photo = tf.io.decode_jpeg(images["a"][0]).numpy()
    assert photo.shape == (64, 64, 3) and photo.std() > 20
