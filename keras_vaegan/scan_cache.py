"""The record check before training, remembered per file, so a start rereads only the files that changed.

DATA_DIR/record_scan.json holds what `data.scan_file` found in each record file, with the file's size,
mtime, ctime and inode as they were before it was read, the settings the findings depend on, and a
SHA-256 of it all. A finding is reused only while the settings and the four values are the same. A file
whose mtime was less than FRESH_NS old when it was read is not kept: a second change within the file
system's timestamp granularity could leave its mtime as it was. A cache that does not read back, or
whose hash or settings differ, is ignored and rewritten.
"""

import hashlib
import json
import os
import time

import tensorflow as tf

from keras_vaegan import data
from vaegan_utils.files import write_bytes_atomically

CACHE_FILE = "record_scan.json"
VERSION = 1  # raise it when what data.scan_file finds in a file changes
FRESH_NS = 2 * 10**9


def _settings(resolution, need_images):
    return {"version": VERSION, "schema_version": data.SCHEMA_VERSION, "tensorflow": tf.__version__,
            "resolution": resolution, "need_images": need_images}


def _digest(body):
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _read(path, settings):
    """The cache's {file name: {"stat": ..., "found": ...}}, or {} when it is missing, garbled or for other
    settings."""
    try:
        with open(path, "rb") as file:
            stored = json.loads(file.read())
        body = stored["body"]
        if stored["sha256"] == _digest(body) and body["settings"] == settings:
            return dict(body["files"])
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return {}


def _stat(path):
    found = os.stat(path)
    return {"size": found.st_size, "mtime_ns": found.st_mtime_ns, "ctime_ns": found.st_ctime_ns,
            "inode": found.st_ino}


def scan_records(data_dir, files, resolution, need_images, skip_bad=False, verbose=False):
    """`data.scan_records` of `files` (in `data_dir`), reading only the files the cache does not vouch for.

    Writes the cache when it changed; when that fails (a read-only folder), says so if `verbose` and
    goes on.
    """
    path = os.path.join(data_dir, CACHE_FILE)
    settings = _settings(resolution, need_images)
    known = _read(path, settings)
    names = {os.path.relpath(file, data_dir) for file in files}
    kept = {name: entry for name, entry in known.items() if name in names}

    def file_scan(file, resolution, need_images):
        name = os.path.relpath(file, data_dir)
        started, stat = time.time_ns(), _stat(file)
        if name in kept and kept[name]["stat"] == stat:
            return kept[name]["found"]
        kept.pop(name, None)
        found = data.scan_file(file, resolution, need_images)
        if stat["mtime_ns"] < started - FRESH_NS:
            kept[name] = {"stat": stat, "found": found}
        return found

    try:
        return data.scan_records(files, resolution, need_images, skip_bad, file_scan)
    finally:
        if kept != known:
            body = {"settings": settings, "files": kept}
            try:
                write_bytes_atomically(path, json.dumps({"sha256": _digest(body), "body": body}).encode())
            except OSError as error:
                if verbose:
                    print(f"{data_dir}: cannot keep what the record check found ({error.strerror or error}), "
                          "so every start rereads every record")
