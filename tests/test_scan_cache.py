"""The record check before training rereads only the files that changed, and finds what a full scan finds."""

import json
import os
import shutil
import stat

import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan import data, scan_cache

EARLIER = 1_700_000_000 * 10**9  # an mtime long past: files written before this start


def backdate(path):
    os.utime(path, ns=(EARLIER, EARLIER))


def framed(record, tmp_path):
    """`record` as the bytes of one TFRecord frame (length, CRCs and all)."""
    path = str(tmp_path / "one-frame")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(record)
    with open(path, "rb") as file:
        return file.read()


@pytest.fixture
def folder(tmp_path, dataset_dir):
    """A copy of the synthetic dataset with a file of mixed records and a truncated shard, all written earlier."""
    out = tmp_path / "data"
    shutil.copytree(dataset_dir, out, ignore=shutil.ignore_patterns(scan_cache.CACHE_FILE + "*"))
    good = data.encode_example(np.ones((32, 32, 32), bool), class_id=7)
    with tf.io.TFRecordWriter(str(out / "mixed.tfrecord")) as writer:
        for record in [good, tf.train.Example().SerializeToString(), b"\x00garbage", good]:
            writer.write(record)
    first = data.find_records(dataset_dir)[0]
    with open(first, "rb") as file:
        (out / "z-cut.tfrecord").write_bytes(file.read()[:-100])
    for path in data.find_records(str(out)):
        backdate(path)
    return str(out)


@pytest.fixture
def reads(monkeypatch):
    """The names of the files `data.scan_file` reads, cleared by the test when it wants."""
    names = []
    original = data.scan_file

    def counted(path, resolution, need_images):
        names.append(os.path.basename(path))
        return original(path, resolution, need_images)

    monkeypatch.setattr(data, "scan_file", counted)
    return names


def full_scan(folder, need_images=False):
    return data.scan_records(data.find_records(folder), 32, need_images, skip_bad=True)


def start(folder, need_images=False, skip_bad=True, verbose=False):
    return scan_cache.scan_records(folder, data.find_records(folder), 32, need_images, skip_bad, verbose)


def same(scan, other):
    return (scan.good, scan.bad, scan.num_classes, scan.readable) == (
        other.good, other.bad, other.num_classes, other.readable)


def error_of(scan, *args):
    with pytest.raises(data.DataError) as raised:
        scan(*args)
    return str(raised.value)


def cached_names(folder):
    with open(os.path.join(folder, scan_cache.CACHE_FILE)) as file:
        return sorted(json.load(file)["body"]["files"])


@pytest.mark.parametrize("need_images", [False, True], ids=["voxels", "images"])
def test_a_second_start_reads_nothing_and_finds_what_a_full_scan_finds(folder, reads, need_images):
    first = start(folder, need_images)
    assert sorted(reads) == sorted(os.path.basename(f) for f in data.find_records(folder))
    reads.clear()
    second = start(folder, need_images)
    assert reads == []
    reference = full_scan(folder, need_images)
    assert same(first, reference) and same(second, reference)
    assert reference.bad and reference.readable and reference.num_classes


@pytest.mark.parametrize("damage, problem", [
    ("a-record-of-no-schema", "not a keras-vaegan record"), ("a-cut-frame", "damaged TFRecord frame"),
])
def test_a_damaged_record_appended_later_stops_the_next_start_as_a_full_scan_would(
    folder, reads, tmp_path, damage, problem
):
    os.remove(os.path.join(folder, "mixed.tfrecord"))
    os.remove(os.path.join(folder, "z-cut.tfrecord"))
    start(folder, skip_bad=False)
    shard = data.find_records(folder)[1]
    added = framed(b"\x00garbage", tmp_path)
    with open(shard, "ab") as file:
        file.write(added if damage == "a-record-of-no-schema" else added[:10])
    reads.clear()
    files = data.find_records(folder)
    cached = error_of(scan_cache.scan_records, folder, files, 32, False, False)
    assert reads == [os.path.basename(shard)]
    assert cached == error_of(data.scan_records, files, 32, False, False)
    assert cached.startswith(f"{shard}: record ") and problem in cached


def test_a_byte_flipped_in_place_with_the_mtime_put_back_is_found(folder, reads):
    before = start(folder)
    shard = data.find_records(folder)[0]
    with open(shard, "r+b") as file:
        file.seek(5000)
        flipped = file.read(1)[0] ^ 0xFF
        file.seek(5000)
        file.write(bytes([flipped]))
    backdate(shard)  # same size, same mtime: only the ctime tells
    reads.clear()
    after = start(folder)
    assert reads == [os.path.basename(shard)]
    assert same(after, full_scan(folder)) and not same(after, before)


def test_a_new_shard_is_read_and_a_removed_one_forgotten(folder, reads):
    start(folder)
    new = os.path.join(folder, "new.tfrecord")
    shutil.copy(os.path.join(folder, "mixed.tfrecord"), new)
    backdate(new)
    reads.clear()
    assert same(start(folder), full_scan(folder)) and reads == ["new.tfrecord"]
    assert "new.tfrecord" in cached_names(folder)
    os.remove(new)
    reads.clear()
    assert same(start(folder), full_scan(folder)) and reads == []
    assert "new.tfrecord" not in cached_names(folder)


def garble_a_count(text):
    return text.replace('"good": ', '"good": 1', 1)


@pytest.mark.parametrize("garble", [
    lambda text: "", lambda text: text[: len(text) // 2], garble_a_count, lambda text: "[]",
    lambda text: '{"sha256": 1, "body": 2}',
], ids=["empty", "cut", "a-count-changed", "a-list", "wrong-types"])
def test_a_garbled_cache_is_ignored_and_rewritten(folder, reads, garble):
    start(folder)
    path = os.path.join(folder, scan_cache.CACHE_FILE)
    with open(path) as file:
        text = file.read()
    assert garble(text) != text
    with open(path, "w") as file:
        file.write(garble(text))
    reads.clear()
    assert same(start(folder), full_scan(folder))
    assert len(reads) == len(data.find_records(folder))
    reads.clear()
    start(folder)
    assert reads == []


@pytest.mark.parametrize("change", ["need_images", "resolution", "version"])
def test_other_settings_reread_every_file(folder, reads, monkeypatch, change):
    os.remove(os.path.join(folder, "z-cut.tfrecord"))
    start(folder)
    reads.clear()
    files = data.find_records(folder)
    if change == "need_images":
        assert same(start(folder, need_images=True), full_scan(folder, need_images=True))
    elif change == "resolution":
        at_64 = error_of(scan_cache.scan_records, folder, files, 64, False, True)  # none of the records fits
        assert at_64 == error_of(data.scan_records, files, 64, False, True)
        reads.clear()
        start(folder)  # and back: the findings at 64^3 replaced those at 32^3
    else:
        monkeypatch.setattr(scan_cache, "VERSION", scan_cache.VERSION + 1)
        start(folder)
    assert sorted(reads) == sorted(os.path.basename(f) for f in files)


def test_files_written_just_now_are_read_again_at_the_next_start(folder, reads):
    shard = data.find_records(folder)[0]
    os.utime(shard)
    start(folder)
    reads.clear()
    assert same(start(folder), full_scan(folder))
    assert reads == [os.path.basename(shard)]


def test_a_read_only_folder_is_read_in_full_at_every_start(folder, reads, monkeypatch, capsys):
    os.chmod(folder, stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(folder, os.W_OK):  # root writes anyway: fail as a read-only folder fails for others
            def refused(path, content):
                raise PermissionError(13, "Permission denied", path)

            monkeypatch.setattr(scan_cache, "write_bytes_atomically", refused)
        for _ in range(2):
            reads.clear()
            assert same(start(folder, verbose=True), full_scan(folder))
            assert len(reads) == len(data.find_records(folder))
            lines = capsys.readouterr().out.splitlines()
            assert lines == [f"{folder}: cannot keep what the record check found (Permission denied), so every "
                             "start rereads every record"]
    finally:
        os.chmod(folder, stat.S_IRWXU)
    assert not os.path.exists(os.path.join(folder, scan_cache.CACHE_FILE))
