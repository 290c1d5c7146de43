"""What makes an output folder a finished dataset: its manifest.json, written last.

A folder is complete when manifest.json exists; its fingerprint (a hash of the settings that decide
the content) tells whether a new command would make the same dataset.
"""

import hashlib
import importlib.metadata
import json
import os
import shutil

from keras_vaegan.data import SCHEMA_VERSION

MANIFEST = "manifest.json"
REPORT = "report.json"
CLASSES = "classes.txt"
STAGING_PREFIX = ".incomplete-"
OWNED = (MANIFEST, REPORT, CLASSES, "contact_sheet.png", "preview.png", "train", "val", "test")


def tool_version():
    """The installed keras-vaegan version."""
    try:
        return importlib.metadata.version("keras-vaegan")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def fingerprint(settings):
    """Hash of the settings that decide the dataset, with the schema and tool versions."""
    fields = dict(settings.fingerprint_fields(), input_path=os.path.abspath(settings.input_path),
                  backgrounds=os.path.abspath(settings.backgrounds) if settings.backgrounds else "",
                  schema_version=SCHEMA_VERSION, tool_version=tool_version())
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def read_manifest(out_dir):
    """The manifest of a finished dataset, or None."""
    path = os.path.join(out_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    with open(path) as file:
        return json.load(file)


def staging_dir(out_dir, print_):
    """Where an unfinished run with this fingerprint keeps its shards."""
    return os.path.join(out_dir, STAGING_PREFIX + print_[:16])


def output_state(out_dir, print_):
    """'complete' (same dataset already there), 'other' (something else is there) or 'free'."""
    if not os.path.exists(out_dir):
        return "free"
    if not os.path.isdir(out_dir):
        return "other"
    manifest = read_manifest(out_dir)
    if manifest is not None:
        return "complete" if manifest.get("fingerprint") == print_ else "other"
    entries = [name for name in os.listdir(out_dir) if not name.startswith(STAGING_PREFIX)]
    if not entries or os.path.isdir(staging_dir(out_dir, print_)):
        return "free"
    return "other"


def describe(out_dir):
    """A few words about what an output folder holds, for the refusal message."""
    manifest = read_manifest(out_dir)
    if manifest is not None:
        settings = manifest.get("settings", {})
        return (f"a {settings.get('source', '?')} dataset from {settings.get('input_path', '?')} "
                f"at {manifest.get('resolution', '?')}^3")
    names = sorted(name for name in os.listdir(out_dir) if not name.startswith(STAGING_PREFIX))
    return f"other files ({', '.join(names[:3])}{', ...' if len(names) > 3 else ''})"


def remove_dataset(out_dir, keep):
    """Deletes what a previous dataset left in `out_dir`: the manifest first, so it never looks complete,
    then its splits, lists, pictures, other staging folders and top-level shards. Other files, and the
    folder `keep`, stay."""
    manifest = os.path.join(out_dir, MANIFEST)
    if os.path.exists(manifest):
        os.remove(manifest)
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name)
        if path == keep:
            continue
        if name in OWNED or name.startswith(STAGING_PREFIX) or ".tfrecord" in name:
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
