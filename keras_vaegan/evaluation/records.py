"""Shapes (and their classes) read from a folder of keras-vaegan TFRecords into numpy, for evaluation."""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_vaegan import data
from keras_vaegan.config import first_line


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


def load_shapes(folder, resolution):
    """Every shape in the records of `folder`, at `resolution`^3.

    Grids stored at another resolution are resampled (occupied-if-any down,
    nearest up, as data_tools does); `stored_resolution` tells the caller so it
    can say so. Raises data.DataError naming the file for unreadable records or
    mixed resolutions.
    """
    from data_tools.resample import resample

    files = data.find_records(folder)
    grids, class_names, source_ids, stored = [], [], [], set()
    for path in files:
        index = 0  # of the record being read: the one named if it fails
        try:
            for serialized in tf.data.TFRecordDataset(path):
                record = data.decode_example(serialized)
                size = int(record["resolution"])
                grid = data.unpack_voxels(record["voxels"].numpy(), size)
                stored.add(size)
                grids.append(resample(grid, resolution))
                class_names.append(record["class_name"].numpy().decode(errors="replace"))
                source_ids.append(record["source_id"].numpy().decode(errors="replace"))
                index += 1
        except (tf.errors.OpError, ValueError) as error:
            raise data.DataError(f"{path}: record {index} cannot be read ({first_line(error)})") from None
    if len(stored) > 1:
        raise data.DataError(f"{folder}: records mix resolutions {sorted(stored)}")
    return ShapeSet(folder, np.stack(grids), class_names, source_ids, stored.pop())
