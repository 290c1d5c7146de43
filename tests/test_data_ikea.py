"""The IKEA source: the real benchmark sample in ../shared/data and a fixture in the release layout."""

import json
import os
import shutil

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from PIL import Image

from data_tools.convert import ConvertError, convert
from data_tools.sources import Settings
from keras_vaegan import data
from vaegan_utils import readers
from vaegan_utils.ikea_layout import upright

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IKEA = os.path.join(ROOT, "..", "shared", "data", "ikea-sample")
IN_PROCESS = ("DirectRunner", 1, "in_memory", "")


def run(input_path, out_dir, **options):
    return convert(Settings(source="ikea", input_path=str(input_path), out_dir=str(out_dir), **options), IN_PROCESS)


def all_records(out_dir, found):
    result = {}
    for split, shards in found["shards"].items():
        for shard in shards:
            for serialized in tf.data.TFRecordDataset(os.path.join(out_dir, shard["file"])):
                record = data.decode_example(serialized)
                result[record["source_id"].numpy().decode()] = (split, record)
    return result


def lines(name):
    return open(os.path.join(IKEA, "Lists", name)).read().split()


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    out = tmp_path_factory.mktemp("ikea") / "out"
    found, _ = run(IKEA, out, resolution=64)
    return out, found, all_records(out, found)


def test_benchmark_sample_converts_every_photo(benchmark):
    out, found, records = benchmark
    assert found["layout"] == "benchmark" and found["records"] == 60 and found["skipped"] == 0
    assert found["classes"] == ["bed", "bookcase", "chair", "desk", "sofa", "table"]
    assert found["native_resolutions"] == [20]
    assert set(records) == {f"ikea/Images/{name}" for name in lines("Images.txt")}
    data.check_records(data.find_records(str(out / "train")), 64, need_images=True)


def test_records_keep_the_photo_the_native_grid_and_the_class(benchmark):
    _, _, records = benchmark
    classes = lines("all_obj_class.txt")
    for name, model in list(zip(lines("Images.txt"), lines("ModelID.txt")))[::7]:
        _, record = records[f"ikea/Images/{name}"]
        assert record["image"].numpy() == open(os.path.join(IKEA, "Images", name), "rb").read()
        assert record["class_name"].numpy().decode() == classes[int(model) - 1]
        native = data.unpack_voxels(record["native_voxels"].numpy(), 20)
        grid = readers.read_mat_voxels(os.path.join(IKEA, "Voxels", f"{model}.mat"), "grid") > 0
        np.testing.assert_array_equal(native, upright(grid))
        voxels = data.unpack_voxels(record["voxels"].numpy(), 64)
        assert abs(voxels.mean() - native.mean()) < 0.35 * native.mean()  # thin parts: 3 or 4 cells per voxel


def test_images_of_one_model_stay_in_one_split(benchmark):
    _, _, records = benchmark
    splits = {}
    for name, model in zip(lines("Images.txt"), lines("ModelID.txt")):
        splits.setdefault(model, set()).add(records[f"ikea/Images/{name}"][0])
    assert all(len(found) == 1 for found in splits.values())
    assert len({next(iter(s)) for s in splits.values()}) > 1


def test_upright_stands_furniture_on_the_floor():
    """Table 1 (the first 'table' model) has its top in the upper half and thin legs below."""
    classes = lines("all_obj_class.txt")
    model = classes.index("table") + 1
    grid = upright(readers.read_mat_voxels(os.path.join(IKEA, "Voxels", f"{model}.mat"), "grid") > 0)
    per_height = grid.sum(axis=(0, 1))
    top = np.nonzero(per_height)[0].max()
    assert per_height[top] > 3 * per_height[np.nonzero(per_height)[0].min()]


def make_release(root):
    """The release layout from the real sample: <class>/ photos, list/<class>.txt, model/<name>.mat
    (field `voxel`), with a grayscale, a CMYK, an RGBA and a truncated photo added."""
    names, models, classes = lines("Images.txt"), lines("ModelID.txt"), lines("all_obj_class.txt")
    os.makedirs(root / "model")
    per_class = {}
    for name, model in zip(names, models):
        per_class.setdefault(classes[int(model) - 1], []).append((name, model))
    for class_name, items in per_class.items():
        (root / class_name).mkdir()
        for number, (name, model) in enumerate(items[:3], start=1):
            shutil.copy(os.path.join(IKEA, "Images", name), root / class_name / f"{number:04d}.jpg")
            grid = readers.read_mat_voxels(os.path.join(IKEA, "Voxels", f"{model}.mat"), "grid")
            scipy.io.savemat(root / "model" / f"IKEA_{class_name}_{model}.mat", {"voxel": grid})
        (root / "list" if (root / "list").exists() else (root / "list")).mkdir(exist_ok=True)
        (root / "list" / f"{class_name}.txt").write_text(
            "".join(f"IKEA_{class_name}_{model}\n" for _, model in items[:3]))
    photo = Image.open(root / "chair" / "0001.jpg")
    photo.convert("L").save(root / "chair" / "0001.jpg")
    photo.convert("CMYK").save(root / "chair" / "0002.jpg")
    os.remove(root / "chair" / "0003.jpg")
    photo.convert("RGBA").save(root / "chair" / "0003.png")
    data_bytes = (root / "sofa" / "0001.jpg").read_bytes()
    (root / "sofa" / "0001.jpg").write_bytes(data_bytes[: len(data_bytes) // 3])


def test_release_layout_with_odd_photos(tmp_path):
    make_release(tmp_path / "ikea")
    found, _ = run(tmp_path / "ikea", tmp_path / "out", max_error_rate=0.1, val_fraction=0, test_fraction=0)
    assert found["layout"] == "release" and found["records"] == 17
    report = json.load(open(tmp_path / "out" / "report.json"))
    assert [s["path"].rsplit("/", 2)[-2:] for s in report["skipped"]] == [["sofa", "0001.jpg"]]
    assert "truncated" in report["skipped"][0]["reason"] or "corrupt" in report["skipped"][0]["reason"]
    records = all_records(tmp_path / "out", found)
    for name in ("0001.jpg", "0002.jpg", "0003.png"):
        _, record = records[f"ikea/chair/{name}"]
        image = tf.io.decode_image(record["image"], channels=3).numpy()
        assert image.shape[2] == 3 and image.std() > 10
        assert Image.open(__import__("io").BytesIO(record["image"].numpy())).mode == "RGB"


def test_release_list_that_does_not_match_the_images_is_an_error(tmp_path):
    make_release(tmp_path / "ikea")
    (tmp_path / "ikea" / "list" / "bed.txt").write_text("only_one\n")
    with pytest.raises(ConvertError, match=r"list/bed.txt: 1 models for 3 images"):
        run(tmp_path / "ikea", tmp_path / "out")


def test_views_0_writes_the_model_library_without_photos(tmp_path):
    found, _ = run(IKEA, tmp_path / "out", views=0)
    records = all_records(tmp_path / "out", found)
    classes = lines("all_obj_class.txt")
    assert found["records"] == len(classes) == 225 and found["skipped"] == 0
    assert set(records) == {f"ikea/models/model{i:04d}" for i in range(1, 226)}
    split, record = records["ikea/models/model0068"]  # the chair of the first photo
    assert record["image"].numpy() == b"" and record["class_name"].numpy().decode() == classes[67]
    grid = readers.read_mat_voxels(os.path.join(IKEA, "Voxels", "68.mat"))
    native = data.unpack_voxels(record["native_voxels"].numpy(), 20)
    np.testing.assert_array_equal(native, upright(grid > 0.5))
    assert {s for s, _ in records.values()} == {"train", "val", "test"}
