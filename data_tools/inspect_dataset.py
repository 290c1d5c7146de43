"""`python -m data_tools inspect DIR`: the manifest's summary, every record verified, a contact sheet
(each photo beside its voxels; voxels alone when the records hold no photos)."""

import hashlib
import os

import numpy as np

from data_tools import manifest

CELL = 96


class InspectError(ValueError):
    """The dataset does not verify; the message names the file (shard) at fault."""


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_record(record, path, resolution):
    from keras_vaegan.data import SCHEMA_VERSION, unpack_voxels

    version = int(record["schema_version"])
    if version != SCHEMA_VERSION:
        raise InspectError(f"{path}: a record has schema version {version}, expected {SCHEMA_VERSION}")
    found = int(record["resolution"])
    if found != resolution:
        raise InspectError(f"{path}: a record is {found}^3, the manifest says {resolution}^3")
    packed = record["voxels"].numpy()
    if len(packed) * 8 < resolution**3:
        raise InspectError(f"{path}: a record's voxel payload is too short for {resolution}^3")
    voxels = unpack_voxels(packed, resolution)
    native = int(record["native_resolution"])
    if native and len(record["native_voxels"].numpy()) * 8 < native**3:
        raise InspectError(f"{path}: a record's native voxels are too short for {native}^3")
    return voxels


def _decode_image(encoded, path):
    import tensorflow as tf

    try:
        return tf.io.decode_image(encoded, channels=3, expand_animations=False).numpy()
    except tf.errors.OpError:
        raise InspectError(f"{path}: a record's image does not decode") from None


class _Reservoir:
    """A uniform random sample of `size` items from a stream (reservoir sampling)."""

    def __init__(self, size, seed):
        self.size, self.seen, self.items = size, 0, []
        self.rng = np.random.default_rng(seed)

    def offer(self, make):
        self.seen += 1
        if len(self.items) < self.size:
            self.items.append(make())
        else:
            slot = self.rng.integers(self.seen)
            if slot < self.size:
                self.items[slot] = make()


def _verify_shard(path, resolution, expected, reservoir):
    """Reads every record (TFRecord CRCs included), checks it, and keeps a random few for the sheet."""
    import tensorflow as tf

    from keras_vaegan.data import decode_example

    count = 0
    try:
        for serialized in tf.data.TFRecordDataset(path):
            record = decode_example(serialized)
            voxels = _check_record(record, path, resolution)
            image = record["image"].numpy()
            if image:
                _decode_image(image, path)
            count += 1
            reservoir.offer(lambda: (voxels, image))
    except tf.errors.OpError as error:
        raise InspectError(f"{path}: corrupt TFRecord ({error.message.splitlines()[0]})") from None
    except ValueError as error:
        if isinstance(error, InspectError):
            raise
        raise InspectError(f"{path}: not a keras-vaegan record ({error})") from None
    if count != expected:
        raise InspectError(f"{path}: holds {count} records, the manifest says {expected}")
    return count


def _contact_sheet(picked, out_path):
    from vaegan_utils import render

    if all(image for _, image in picked):
        photos = [_decode_image(image, out_path) for _, image in picked]
        sheet = render.side_by_side(photos, [voxels for voxels, _ in picked], cell_size=CELL)
    else:
        sheet = render.render_grid([voxels for voxels, _ in picked], columns=4, cell_size=CELL)
    render.save_png(sheet, out_path)


def summary(found):
    """Readable lines of a manifest."""
    settings = found.get("settings", {})
    natives = "".join(f", native {n}^3 kept" for n in found.get("native_resolutions", []))
    lines = [f"dataset: {settings.get('source')} ({found.get('layout')}) from {settings.get('input_path')}",
             f"resolution {found['resolution']}^3{natives}, schema {found['schema_version']}, "
             f"tool {found.get('tool_version')}, {found['records']} records, {found.get('skipped', 0)} skipped"]
    for split, counts in found["counts"].items():
        per_class = ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"
        lines.append(f"  {split}: {sum(counts.values())} ({per_class})")
    return lines


def inspect(folder, samples=16, seed=0):
    """Verifies every shard of a dataset folder and writes folder/contact_sheet.png; returns lines to print."""
    if not os.path.isdir(folder):
        raise InspectError(f"{folder}: not a directory")
    try:
        found = manifest.read_manifest(folder)
    except ValueError as error:
        raise InspectError(f"{os.path.join(folder, manifest.MANIFEST)}: not valid JSON ({error})") from None
    if found is None:
        raise InspectError(f"{folder}: no {manifest.MANIFEST}, so not a finished dataset (rerun the conversion)")
    lines = summary(found)
    reservoir, total = _Reservoir(samples, seed), 0
    for split, shards in found["shards"].items():
        for shard in shards:
            path = os.path.join(folder, shard["file"])
            if not os.path.exists(path):
                raise InspectError(f"{path}: missing (listed in the manifest)")
            if _sha256(path) != shard["sha256"]:
                raise InspectError(f"{path}: content hash differs from the manifest's")
            total += _verify_shard(path, found["resolution"], shard["records"], reservoir)
    picked = reservoir.items
    if not picked:
        raise InspectError(f"{folder}: holds no records")
    sheet = os.path.join(folder, "contact_sheet.png")
    _contact_sheet(picked, sheet)
    lines.append(f"verified {total} records in {sum(len(s) for s in found['shards'].values())} shards: OK")
    lines.append(f"wrote {sheet} ({len(picked)} samples)")
    return lines
