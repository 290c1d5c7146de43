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
import re

import numpy as np
import tensorflow as tf

from keras_vaegan.augment import augment_photo
from vaegan_utils.errors import first_line

SCHEMA_VERSION = 1
RECORD_PATTERNS = ("*.tfrecord", "*.tfrecord-*", "*.tfrecords")
FRAME_BYTES = 16  # a TFRecord's length (8), its CRC (4) and the data's CRC (4) around each record
PARALLEL_CALLS = min(len(os.sched_getaffinity(0)), 16)  # records read and decoded at once
PREFETCH_BATCHES = 2

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
    """Checks the first record of every file with `checked_record` (a quick look before export or a report).

    Raises DataError naming the first file that does not fit.
    """
    for path in files:
        try:
            first = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
        except tf.errors.OpError as error:
            raise DataError(f"{path}: not a keras-vaegan record ({first_line(error)})") from None
        if first is None:
            raise DataError(f"{path}: holds no records")
        _, problem = checked_record(first, resolution, need_images)
        if problem:
            raise DataError(f"{path}: {problem}")


def checked_record(serialized, resolution, need_images):
    """(the parsed record, or None when it does not parse; what is wrong with it for a model at
    `resolution`, or None when it fits)."""
    try:
        record = decode_example(serialized)
    except (tf.errors.OpError, ValueError) as error:
        return None, f"not a keras-vaegan record ({first_line(error, 200)})"
    version = int(record["schema_version"])
    if version != SCHEMA_VERSION:
        return record, f"schema version {version}, this library reads {SCHEMA_VERSION}"
    found = int(record["resolution"])
    if found != resolution:
        return record, f"voxels are {found}^3 but the model is {resolution}^3 (--resolution)"
    if len(record["voxels"].numpy()) * 8 < resolution**3:
        return record, f"voxel payload too short for {resolution}^3"
    image = record["image"].numpy()
    if need_images and not image:
        return record, "holds no image, which 3D-VAE-GAN training needs"
    if need_images:
        try:
            tf.io.decode_image(image, channels=3, expand_animations=False)
        except tf.errors.OpError:
            return record, "its image does not decode"
    return record, None


class RecordScan:
    """What `scan_records` found: counts, and which records the training dataset must leave out.

    `bad` lists (path, record index, problem). `readable[path]` is how many
    records can be read from a file whose framing is damaged (TFRecord cannot
    find the records after a damaged one); files not in it read to the end.
    """

    def __init__(self):
        self.good = 0
        self.bad = []
        self.readable = {}
        self.num_classes = 0  # 1 + the largest class id of the good records (0: none has a class)

    def exclusions(self):
        """{path: (readable count or None, set of bad indices)} for `make_dataset(exclude=...)`."""
        result = {}
        for path, index, _ in self.bad:
            result.setdefault(path, (self.readable.get(path), set()))[1].add(index)
        return result


def scan_file(path, resolution, need_images):
    """Reads every record of one file (TFRecord CRCs checked) and checks each with `checked_record`.

    Returns what it found, as JSON keeps it: {"good": count, "bad": [[record index, problem], ...],
    "num_classes": 1 + the largest class id of the good records (0: none has a class), "readable":
    how many records come before a damaged frame, or None when the file reads to the end}.
    """
    found = {"good": 0, "bad": [], "num_classes": 0, "readable": None}
    index = offset = 0
    size = os.path.getsize(path)
    records = iter(tf.data.TFRecordDataset(path))
    while True:
        try:
            serialized = next(records, None)
        except tf.errors.OpError as error:
            reason = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:.*", "", first_line(error, 300))
            problem = f"damaged TFRecord frame, the rest of the file is unreadable ({reason})"
            serialized, found["readable"] = None, index
        else:
            if serialized is None and offset == size:
                break
            if serialized is None:  # TFRecordDataset ends quietly inside a cut frame header
                problem = f"damaged TFRecord frame, the file ends inside a record header at byte {offset}"
                found["readable"] = index
            else:
                offset += len(serialized.numpy()) + FRAME_BYTES
                record, problem = checked_record(serialized, resolution, need_images)
        if problem:
            found["bad"].append([index, problem])
        else:
            found["good"] += 1
            found["num_classes"] = max(found["num_classes"], int(record["class_id"]) + 1)
        if serialized is None:
            break
        index += 1
    return found


def scan_records(files, resolution, need_images, skip_bad=False, file_scan=scan_file):
    """Checks every record of every file with `file_scan` (`scan_file`, or `scan_cache`'s, which remembers).

    The first bad record raises DataError naming the file and the record's
    index, unless `skip_bad`, which counts it in the returned RecordScan. A
    damaged frame ends its file: the records after it cannot be located.
    """
    scan = RecordScan()
    for path in files:
        found = file_scan(path, resolution, need_images)
        if found["bad"] and not skip_bad:
            index, problem = found["bad"][0]
            raise DataError(f"{path}: record {index}: {problem} (--bad_records=skip leaves such records out)")
        scan.good += found["good"]
        scan.bad += [(path, index, problem) for index, problem in found["bad"]]
        if found["readable"] is not None:
            scan.readable[path] = found["readable"]
        scan.num_classes = max(scan.num_classes, found["num_classes"])
    if not scan.good:
        raise DataError(f"{os.path.dirname(files[0]) or '.'}: none of the {len(scan.bad)} records fits")
    return scan


def _record_reader(exclude):
    """TFRecordDataset of one file, without the records `exclude` ({path: (readable, indices)}) names."""
    if not exclude:
        return tf.data.TFRecordDataset

    def table(keys, values):
        initializer = tf.lookup.KeyValueTensorInitializer(
            tf.constant(keys, tf.string), tf.constant(values, tf.int64)
        )
        return tf.lookup.StaticHashTable(initializer, default_value=-1)

    limits = table(list(exclude), [-1 if readable is None else readable for readable, _ in exclude.values()])
    dropped_keys = [f"{path}\n{index}" for path, (_, indices) in exclude.items() for index in sorted(indices)]
    dropped = table(dropped_keys, [1] * len(dropped_keys))

    def read(path):
        records = tf.data.TFRecordDataset(path).take(limits.lookup(path)).enumerate()
        records = records.filter(
            lambda index, _: dropped.lookup(tf.strings.join([path, "\n", tf.strings.as_string(index)])) < 0
        )
        return records.map(lambda _, record: record)

    return read


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


def _shuffled(records, shuffle_buffer, seed, repeat):
    """`records` (over and over when `repeat`), shuffled in an order set by `seed` alone.

    Every iterator of the result reads the same elements, which is what makes
    runs repeatable: under a distribution strategy Keras' `fit` reads a first
    batch from an iterator of its own before it trains on a second one. A
    shuffle before `repeat` with `reshuffle_each_iteration` draws each epoch's
    order from a state its iterators share, so fit's iterator got the next
    order or the one after, as the first iterator's prefetching happened to
    reach an epoch's end before or after it started.
    """
    if repeat:
        records = records.repeat()
    if not shuffle_buffer:
        return records
    return records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)


def make_dataset(
    files, resolution, batch_size, image_size=None, shuffle_buffer=1024, seed=0, repeat=True, exclude=None,
    augment=False, class_ids=False,
):
    """A batched dataset of voxels (3D-GAN) or (image, voxels) pairs (3D-VAE-GAN).

    `image_size=None` drops images; `augment` passes them through
    `augment.augment_photo`, seeded by `seed` and the element's position;
    `class_ids` adds each record's class id (-1: none) to (image, voxels);
    `exclude` (`RecordScan.exclusions()`) leaves bad records out. Batches have
    a fixed size (the remainder is dropped) so every replica of a
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
        if class_ids:
            return image, voxels, record["class_id"]
        return image, voxels

    dataset = tf.data.Dataset.from_tensor_slices(list(files))
    cycle_length = min(len(files), 8)
    dataset = dataset.interleave(
        _record_reader(exclude), cycle_length=cycle_length, num_parallel_calls=min(cycle_length, PARALLEL_CALLS),
        deterministic=True,
    )
    dataset = _shuffled(dataset, shuffle_buffer, seed, repeat)
    dataset = dataset.enumerate().map(parse, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(PREFETCH_BATCHES)
    # No autotuning: deleting an iterator waits for tf.data's tuning thread, which sleeps up to
    # a minute between rounds, so each `fit` that ended at a checkpoint stalled for up to 60 s.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
