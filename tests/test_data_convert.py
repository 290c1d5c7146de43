"""data_tools conversion: the Beam pipeline, splits, shards, report, manifest, safe re-runs, bad input.

Runs on the real ModelNet chair array in ../shared/data and on small arrays and .mat files built in
tmp_path. Conversions run in-process on the DirectRunner's in_memory mode (one worker), except one
that checks the default multi-process mode writes the same bytes.
"""

import errno
import gzip
import json
import os
import resource
import tempfile

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from data_tools import manifest, pipeline
from data_tools.convert import ConvertError, convert
from data_tools.sources import Settings
from keras_vaegan import data

from conftest import boxes, save_npy_gz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
CHAIRS = os.path.join(SHARED, "modelnet10-chair-32.npy.gz")
IN_PROCESS = ("DirectRunner", 1, "in_memory", "")


def run(input_path, out_dir, runner=IN_PROCESS, overwrite=False, **options):
    # These tests are about the pipeline: arrays keep their framing (refitted, a box fills its grid and is skipped).
    options.setdefault("voxel_framing", "stored")
    settings = Settings(source=options.pop("source", "modelnet"), input_path=str(input_path), out_dir=str(out_dir),
                        **options)
    return convert(settings, runner, overwrite=overwrite)


def records(path):
    return [data.decode_example(r) for r in tf.data.TFRecordDataset(path)]


def shard_files(out_dir):
    return sorted(os.path.join(dirpath, name) for dirpath, _, names in os.walk(out_dir) for name in names
                  if ".tfrecord" in name)


@pytest.fixture(scope="module")
def chairs(tmp_path_factory):
    out = tmp_path_factory.mktemp("chairs") / "out"
    found, already = run(CHAIRS, out)
    return out, found, already


def test_real_chairs_convert_with_the_empty_grid_listed(chairs):
    out, found, already = chairs
    assert not already
    assert found["records"] == 889 and found["skipped"] == 1
    assert found["classes"] == ["chair"]
    report = json.load(open(out / "report.json"))
    assert report["samples_listed"] == 890
    assert [s["source_id"] for s in report["skipped"]] == ["modelnet/modelnet10-chair-32.npy.gz#00000"]
    assert "empty" in report["skipped"][0]["reason"]
    assert (out / "classes.txt").read_text() == "chair\n"
    assert sum(found["counts"]["train"].values()) > sum(found["counts"]["val"].values()) > 0
    assert found["sources"]["files"]["modelnet10-chair-32.npy.gz"] == pipeline.file_sha256(CHAIRS)


def test_records_hold_the_source_grids_and_training_finds_them(chairs):
    out, found, _ = chairs
    source = np.load(gzip.open(CHAIRS))[:, 0] > 0.5
    train_files = data.find_records(str(out / "train"))
    data.check_records(train_files, 32, need_images=False)
    seen = 0
    for path in shard_files(out):
        for record in records(path):
            index = int(record["source_id"].numpy().decode().rsplit("#", 1)[1])
            voxels = data.unpack_voxels(record["voxels"].numpy(), 32)
            np.testing.assert_array_equal(voxels, source[index])
            assert record["image"].numpy() == b""
            seen += 1
    assert seen == 889


def test_splits_are_disjoint_and_follow_the_model_hash(chairs):
    out, _, _ = chairs
    ids = {}
    for split in pipeline.SPLITS:
        for path in shard_files(out / split):
            ids[split] = {r["source_id"].numpy().decode() for r in records(path)}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    for split, members in ids.items():
        for source_id in members:
            model = source_id.removeprefix("modelnet/")
            assert pipeline.split_of(model, 0.1, 0.1) == split


def test_rerun_of_a_finished_dataset_does_nothing(chairs):
    out, found, _ = chairs
    before = {path: os.path.getmtime(path) for path in shard_files(out)}
    again, already = run(CHAIRS, out)
    assert already and again == found
    assert {path: os.path.getmtime(path) for path in shard_files(out)} == before


def test_another_dataset_is_refused_without_overwrite(chairs, tmp_path):
    out, _, _ = chairs
    with pytest.raises(ConvertError, match=r"already holds a modelnet dataset .*--overwrite"):
        run(CHAIRS, out, resolution=64)
    synthetic = tmp_path / "synthetic"
    synthetic.mkdir()
    (synthetic / "train.tfrecord-00000-of-00001").write_bytes(b"x")
    with pytest.raises(ConvertError, match="already holds other files"):
        run(CHAIRS, synthetic)


def test_overwrite_replaces_the_dataset_and_keeps_unrelated_files(tmp_path):
    source = save_npy_gz(tmp_path / "in" / "chair.npy.gz", boxes(6))
    out = tmp_path / "out"
    run(source, out)
    (out / "notes.txt").write_text("mine")
    found, _ = run(source, out, overwrite=True, resolution=64)
    assert found["resolution"] == 64
    assert (out / "notes.txt").read_text() == "mine"
    for path in shard_files(out):
        assert all(int(r["resolution"]) == 64 for r in records(path))


def test_same_command_writes_the_same_bytes_in_the_default_multiprocess_mode(tmp_path, monkeypatch):
    source = save_npy_gz(tmp_path / "in" / "table.npy.gz", boxes(40))
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    first, _ = run(source, tmp_path / "a", shard_mb=0.001)
    second, _ = run(source, tmp_path / "b", runner=("DirectRunner", 2, "multi_processing", ""), shard_mb=0.001)
    assert first["shards"] == second["shards"]
    assert len(first["shards"]["train"]) > 1
    assert sum(s["records"] for split in first["shards"].values() for s in split) == 40
    assert os.listdir(system_temp) == []  # Beam's own temporary folders are gone with the run
    assert not [path for path in tmp_path.rglob(".beam-tmp")]


def test_shards_follow_the_target_size(tmp_path):
    source = save_npy_gz(tmp_path / "in" / "bed.npy.gz", boxes(64))
    record_estimate = 32**3 // 8 + 128
    found, _ = run(source, tmp_path / "out", shard_mb=4 * record_estimate / 2**20, val_fraction=0, test_fraction=0)
    sizes = [s["records"] for s in found["shards"]["train"]]
    assert sizes == [4] * 16
    assert all(4 * 4096 < s["bytes"] < 4 * record_estimate * 1.1 for s in found["shards"]["train"])
    names = [s["file"] for s in found["shards"]["train"]]
    assert names == [f"train/train.tfrecord-{i:05d}-of-00016" for i in range(16)]


def test_interrupted_run_leaves_no_complete_dataset_and_rerun_finishes_it(tmp_path, monkeypatch):
    source = save_npy_gz(tmp_path / "in" / "sofa.npy.gz", boxes(30))
    clean, _ = run(source, tmp_path / "clean", shard_mb=0.001)
    out = tmp_path / "out"
    real_write = pipeline.write_shard
    calls = []

    def write_then_fail(grouped, staging):
        calls.append(grouped[0])
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated interruption")
        return real_write(grouped, staging)

    monkeypatch.setattr(pipeline, "write_shard", write_then_fail)
    with pytest.raises((ConvertError, KeyboardInterrupt)):
        run(source, out, shard_mb=0.001)
    assert not (out / "manifest.json").exists()
    assert not [p for p in shard_files(out) if "/.incomplete-" not in p]
    monkeypatch.setattr(pipeline, "write_shard", real_write)
    finished = sum(1 for p in shard_files(out) if p.endswith(".tfrecord"))
    assert finished == 2
    resumed = []
    monkeypatch.setattr(pipeline, "run", lambda todo, *a: (resumed.extend(todo), real_run(todo, *a)))
    found, already = run(source, out, shard_mb=0.001)
    assert not already and found["shards"] == clean["shards"]
    assert resumed and len(resumed) < 30
    assert not [name for name in os.listdir(out) if name.startswith(".incomplete-")]


real_run = pipeline.run


def test_disk_full_removes_the_partial_shard_and_rerun_finishes(tmp_path, monkeypatch):
    source = save_npy_gz(tmp_path / "in" / "desk.npy.gz", boxes(12))
    out = tmp_path / "out"

    class FullDisk(tf.io.TFRecordWriter):
        def write(self, record):
            super().write(record)
            self.flush()
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.io, "TFRecordWriter", FullDisk)
    with pytest.raises(ConvertError, match="No space left on device.*rerunning the same command resumes"):
        run(source, out)
    assert not (out / "manifest.json").exists()
    leftovers = [name for _, _, names in os.walk(out) for name in names if ".tmp" in name or ".tfrecord" in name]
    assert leftovers == []
    monkeypatch.undo()
    found, _ = run(source, out)
    assert found["records"] == 12


def test_volumetric_mat_files_are_padded_from_30_to_32(tmp_path):
    grid = np.zeros((30, 30, 30), np.uint8)
    grid[5:20, 8:12, 0:25] = 1
    folder = tmp_path / "volumetric_data" / "chair" / "30" / "train"
    folder.mkdir(parents=True)
    scipy.io.savemat(folder / "chair_000000182_1.mat", {"instance": grid})
    scipy.io.savemat(folder / "chair_000000183_1.mat", {"instance": grid[::-1].copy()})
    found, _ = run(tmp_path / "volumetric_data", tmp_path / "out", val_fraction=0, test_fraction=0)
    assert found["classes"] == ["chair"] and found["records"] == 2
    by_id = {r["source_id"].numpy().decode(): r for r in records(tmp_path / "out" / found["shards"]["train"][0]["file"])}
    voxels = data.unpack_voxels(by_id["modelnet/chair/30/train/chair_000000182_1.mat"]["voxels"].numpy(), 32)
    np.testing.assert_array_equal(voxels, np.pad(grid, 1) > 0)


def test_broken_files_are_listed_with_their_reason_and_too_many_abort(tmp_path):
    folder = tmp_path / "in"
    save_npy_gz(folder / "chair" / "good.npy.gz", boxes(3))
    truncated = gzip.compress(b"\x93NUMPY" + bytes(40))[:30]
    (folder / "chair" / "truncated.npy.gz").write_bytes(truncated)
    (folder / "chair" / "broken.mat").write_bytes(b"MATLAB 5.0 MAT-file, but cut short")
    np.save(folder / "chair" / "nan.npy", np.full((1, 32, 32, 32), np.nan))
    with pytest.raises(ConvertError, match=r"report.json: 3 of 6 samples failed .*--max_error_rate=0.05\), e.g. /"):
        run(folder, tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()
    found, _ = run(folder, tmp_path / "out", max_error_rate=0.6)
    report = json.load(open(tmp_path / "out" / "report.json"))
    reasons = {os.path.basename(s["path"]): s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"truncated.npy.gz", "broken.mat", "nan.npy"}
    assert all(reason.startswith(str(folder)) or "voxel" in reason for reason in reasons.values())
    assert found["records"] == 3


def test_a_sample_over_the_worker_memory_ceiling_is_skipped_alone(tmp_path, monkeypatch):
    from data_tools.sources import modelnet

    folder = tmp_path / "in"
    save_npy_gz(folder / "chair" / "good.npy.gz", boxes(3))
    np.save(folder / "chair" / "hog.npy", boxes(1))
    load = modelnet.load

    def load_or_hog(task, settings):
        if task.paths[0].endswith("hog.npy"):
            np.ones(2 << 30, np.uint8)  # 2 GiB, over the 1 GiB a sample may take on
        return load(task, settings)

    monkeypatch.setattr(modelnet, "load", load_or_hog)
    limit_before = resource.getrlimit(resource.RLIMIT_DATA)
    found, _ = run(folder, tmp_path / "out", max_error_rate=0.3, worker_memory_gb=1)
    assert resource.getrlimit(resource.RLIMIT_DATA) == limit_before
    report = json.load(open(tmp_path / "out" / "report.json"))
    assert [s["reason"] for s in report["skipped"]] == [
        f"{folder / 'chair' / 'hog.npy'}: ran out of memory (needed over --worker_memory_gb=1 GiB)"]
    assert found["records"] == 3


def test_overlapping_memory_ceilings_lift_only_when_the_last_sample_ends():
    from data_tools import worker_memory

    before = resource.getrlimit(resource.RLIMIT_DATA)
    with worker_memory.ceiling(1):
        with worker_memory.ceiling(1):
            pass
        assert resource.getrlimit(resource.RLIMIT_DATA)[0] != before[0]
    assert resource.getrlimit(resource.RLIMIT_DATA) == before


def test_missing_input_and_unknown_layout_are_clear_errors(tmp_path):
    with pytest.raises(ConvertError, match=r"nowhere: no such file or directory \(--input\)"):
        run(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConvertError, match=r"no ModelNet files found; expected ModelNet10/40 meshes"):
        run(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(ConvertError, match=r"not an IKEA dataset; expected the benchmark .* or the release"):
        run(tmp_path / "empty", tmp_path / "out", source="ikea")
    with pytest.raises(ConvertError, match="--resolution: 48"):
        run(tmp_path / "empty", tmp_path / "out", resolution=48)
    with pytest.raises(ConvertError, match=r"--worker_memory_gb: 0.1 is not 0 \(no limit\) or in \[0.5, 4096\]"):
        run(tmp_path / "empty", tmp_path / "out", worker_memory_gb=0.1)
    assert not (tmp_path / "out").exists()
