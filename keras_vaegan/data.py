"""The one TFRecord schema of keras-vaegan, and the tf.data pipeline that reads it.

A record holds one shape and, optionally, one image of it:
  voxels            bytes   occupancy grid, bool, C order (D, H, W), np.packbits
  resolution        int64   edge of the voxel grid
  image             bytes   encoded JPEG or PNG (empty when the record has none)
  class_name        bytes   e.g. b"chair"
  class_id          int64   index into the dataset's class list (-1: unknown)
  source_id         bytes   where the shape came from, e.g. "synthetic/chair/00012"
  native_voxels     bytes   optional ground truth at its native resolution (packed)
  native_resolution int64   edge of native_voxels (0: none)
  schema_version    int64   SCHEMA_VERSION
Writers (data_tools) call `encode_example`; training calls `make_dataset`.
"""

import glob
import os

import numpy as np
import tensorflow as tf

from keras_vaegan.augment import augment_photo
from keras_vaegan.config import first_line

SCHEMA_VERSION = 1
RECORD_PATTERNS = ("*.tfrecord", "*.tfrecord-*", "*.tfrecords")

FEATURES = {
    "voxels": tf.io.FixedLenFeature([], tf.string),
    "resolution": tf.io.FixedLenFeature([], tf.int64),
    "image": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "class_name": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "class_id": tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    "source_id": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "native_voxels": tf.io.FixedLenFeature([], tf.string, default_value=b""),
    "native_resolution": tf.io.FixedLenFeature([], tf.int64, default_value=0),
    "schema_version": tf.io.FixedLenFeature([], tf.int64),
}


class DataError(ValueError):
    """Input data is missing or does not fit; the message names the file."""


def pack_voxels(voxels):
    """Bit-packs a cubic occupancy grid (anything > 0.5 is occupied)."""
    grid = np.asarray(voxels)
    if grid.ndim != 3 or len(set(grid.shape)) != 1:
        raise ValueError(f"voxels must be a cubic 3D grid, got shape {grid.shape}")
    return np.packbits(grid.reshape(-1) > 0.5).tobytes()


def unpack_voxels(packed, resolution):
    """Inverse of `pack_voxels`, as a bool array (R, R, R)."""
    bits = np.unpackbits(np.frombuffer(packed, np.uint8), count=resolution**3)
    return bits.reshape(resolution, resolution, resolution).astype(bool)


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def encode_example(voxels, image=b"", class_name="", class_id=-1, source_id="", native_voxels=None):
    """Serializes one record of the schema; `image` is encoded JPEG/PNG bytes."""
    feature = {
        "voxels": _bytes(pack_voxels(voxels)),
        "resolution": _int(np.shape(voxels)[0]),
        "image": _bytes(bytes(image)),
        "class_name": _bytes(class_name.encode()),
        "class_id": _int(class_id),
        "source_id": _bytes(source_id.encode()),
        "schema_version": _int(SCHEMA_VERSION),
    }
    if native_voxels is not None:
        feature["native_voxels"] = _bytes(pack_voxels(native_voxels))
        feature["native_resolution"] = _int(np.shape(native_voxels)[0])
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def decode_example(serialized):
    """Parses one serialized record into a dict of tensors (no decoding of payloads)."""
    return tf.io.parse_single_example(serialized, FEATURES)


def find_records(data_dir):
    """The sorted TFRecord files in `data_dir`; raises DataError when there are none."""
    if not data_dir:
        raise DataError("--data_dir: no data directory given")
    if not os.path.isdir(data_dir):
        raise DataError(f"{data_dir}: not a directory")
    files = sorted({f for p in RECORD_PATTERNS for f in glob.glob(os.path.join(data_dir, p))})
    files = [f for f in files if os.path.getsize(f) > 0]
    if not files:
        raise DataError(f"{data_dir}: holds no non-empty TFRecord files ({', '.join(RECORD_PATTERNS)})")
    return files


def check_records(files, resolution, need_images):
    """Reads the first record of every file and checks schema, resolution and images.

    Raises DataError naming the first file that does not fit.
    """
    for path in files:
        try:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
            if first is None:
                raise DataError(f"{path}: holds no records")
            record = decode_example(first)
        except (tf.errors.OpError, ValueError) as error:
            if isinstance(error, DataError):
                raise
            raise DataError(f"{path}: not a keras-vaegan TFRecord ({first_line(error)})") from None
        version = int(record["schema_version"])
        if version != SCHEMA_VERSION:
            raise DataError(f"{path}: schema version {version}, this library reads {SCHEMA_VERSION}")
        found = int(record["resolution"])
        if found != resolution:
            raise DataError(f"{path}: voxels are {found}^3 but the model is {resolution}^3 (--resolution)")
        if len(record["voxels"].numpy()) * 8 < resolution**3:
            raise DataError(f"{path}: voxel payload too short for {resolution}^3")
        if need_images and not record["image"].numpy():
            raise DataError(f"{path}: records hold no images, which 3D-VAE-GAN training needs")


def voxels_from_packed(packed, resolution):
    """Unpacks bit-packed occupancy into float32 (R, R, R, 1) inside a tf.data graph."""
    packed_bytes = tf.io.decode_raw(packed, tf.uint8)
    shifts = tf.constant([7, 6, 5, 4, 3, 2, 1, 0], tf.uint8)
    bits = tf.bitwise.bitwise_and(tf.bitwise.right_shift(packed_bytes[:, None], shifts), 1)
    bits = tf.reshape(bits, [-1])[: resolution**3]
    return tf.reshape(tf.cast(bits, tf.float32), [resolution, resolution, resolution, 1])


def preprocess_image(image, image_size):
    """uint8 RGB (H, W, 3) -> float32 (S, S, 3) in [0, 1], padded to square then resized.

    The same function serves training and inference so both see the same pixels.
    """
    image = tf.image.convert_image_dtype(image, tf.float32)
    return tf.image.resize_with_pad(image, image_size, image_size, antialias=True)


def decode_image(encoded, image_size):
    """Encoded JPEG/PNG bytes -> the model's image input."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    return preprocess_image(image, image_size)


def make_dataset(
    files, resolution, batch_size, image_size=None, shuffle_buffer=1024, seed=0, repeat=True, augment=False
):
    """A batched dataset of voxels (3D-GAN) or (image, voxels) pairs (3D-VAE-GAN).

    `image_size=None` drops images; `augment` passes them through
    `augment.augment_photo`, seeded by `seed` and the element's position. Batches
    have a fixed size (the remainder is dropped) so every replica of a
    distribution strategy gets equal work.
    """

    def parse(index, serialized):
        record = decode_example(serialized)
        voxels = voxels_from_packed(record["voxels"], resolution)
        if image_size is None:
            return voxels
        image = decode_image(record["image"], image_size)
        if augment:
            image = augment_photo(image, tf.stack([tf.constant(seed, tf.int64), index]))
        return image, voxels

    dataset = tf.data.Dataset.from_tensor_slices(list(files))
    dataset = dataset.interleave(
        tf.data.TFRecordDataset, cycle_length=min(len(files), 8), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.enumerate().map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
