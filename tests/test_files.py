"""Atomic writes: the old file stays whole and no temporary is left when writing fails."""

import os

import pytest

from vaegan_utils.files import write_atomically, write_bytes_atomically


def test_write_bytes_replaces_the_file(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes_atomically(path, b"old")
    write_bytes_atomically(path, b"new")
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["a.bin"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes_atomically(path, b"old")

    def half_then_fail(temporary):
        with open(temporary, "wb") as handle:
            handle.write(b"ha")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["a.bin"]
