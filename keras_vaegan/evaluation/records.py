"""Shapes (and their classes, and pictures) read from a folder of keras-vaegan TFRecords into numpy, for evaluation."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_vaegan import data
from vaegan_utils.errors import first_line


@dataclasses.dataclass
class ShapeSet:
    """Binary grids (N, R, R, R) with their class names and source ids, read from `folder`."""

    folder: str
    grids: np.ndarray
    class_names: list
    source_ids: list
    stored_resolution: int

    @property
    def classes(self):
        """The sorted distinct class names."""
        return sorted(set(self.class_names))


@dataclasses.dataclass
class RenderSet:
    """Pictures (N, S, S, 3) float [0, 1] with their grids (N, R, R, R), class names and source ids: a subset
    of the `total` records read, or all of them."""

    images: np.ndarray
    grids: np.ndarray
    class_names: list
    source_ids: list
    stored_resolution: int
    total: int


def _read_records(folder, convert):
    """[(path, index, convert(record))] for every record of `folder`'s files.

    Raises data.DataError naming the file and the record when one cannot be
    read or `convert` raises ValueError, or when there are no records.
    """
    entries = []
    for path in data.find_records(folder):
        index = 0  # of the record being read: the one named if it fails
        try:
            for serialized in tf.data.TFRecordDataset(path):
                entries.append((path, index, convert(data.decode_example(serialized))))
                index += 1
        except (tf.errors.OpError, ValueError) as error:
            raise data.DataError(f"{path}: record {index} cannot be read ({first_line(error)})") from None
    if not entries:
        raise data.DataError(f"{folder}: its TFRecord files hold no records")
    return entries


def _text(tensor):
    return tensor.numpy().decode(errors="replace")


def _one_resolution(folder, sizes):
    if len(set(sizes)) > 1:
        raise data.DataError(f"{folder}: records mix resolutions {sorted(set(sizes))}")
    return sizes[0]


def load_shapes(folder, resolution):
    """Every shape in the records of `folder`, at `resolution`^3.

    Grids stored at another resolution are resampled (occupied-if-any down,
    nearest up, as data_tools does); `stored_resolution` tells the caller so it
    can say so. Raises data.DataError naming the file for unreadable records or
    mixed resolutions.
    """
    from vaegan_utils.resample import resample

    def convert(record):
        size = int(record["resolution"])
        grid = resample(data.unpack_voxels(record["voxels"].numpy(), size), resolution)
        return grid, size, _text(record["class_name"]), _text(record["source_id"])

    grids, sizes, class_names, source_ids = zip(*(entry for _, _, entry in _read_records(folder, convert)))
    return ShapeSet(folder, np.stack(grids), list(class_names), list(source_ids),
                    _one_resolution(folder, sizes))


def load_renders(folder, resolution, image_size, limit=0, seed=0):
    """(picture, shape) records of `folder` as a RenderSet: shapes at `resolution`^3 (resampled as in
    `load_shapes`), pictures preprocessed for the encoder as in training (`data.decode_image`).

    With `limit` > 0 a seeded random subset of at most `limit` records is kept.
    Raises data.DataError naming the file and record that has no picture, one
    that does not decode, or voxels that cannot be read.
    """
    from vaegan_utils.resample import resample

    def convert(record):
        image = record["image"].numpy()
        if not image:
            raise ValueError("holds no picture; this needs records of a photo and its shape")
        size = int(record["resolution"])
        return record["voxels"].numpy(), size, image, _text(record["class_name"]), _text(record["source_id"])

    entries = _read_records(folder, convert)
    stored = _one_resolution(folder, [entry[1] for _, _, entry in entries])
    picked = np.arange(len(entries))
    if 0 < limit < len(entries):
        picked = np.sort(np.random.default_rng(seed).permutation(len(entries))[:limit])
    images, grids, class_names, source_ids = [], [], [], []
    for path, index, (packed, size, image, class_name, source_id) in (entries[i] for i in picked):
        try:
            images.append(data.decode_image(image, image_size).numpy())
            grids.append(resample(data.unpack_voxels(packed, size), resolution))
        except tf.errors.OpError:
            raise data.DataError(f"{path}: record {index}: its picture does not decode") from None
        except ValueError as error:
            raise data.DataError(f"{path}: record {index} cannot be read ({first_line(error)})") from None
        class_names.append(class_name)
        source_ids.append(source_id)
    return RenderSet(np.stack(images), np.stack(grids), class_names, source_ids, stored, len(entries))
