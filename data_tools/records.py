"""Sharded TFRecord writing that never leaves a half-written shard behind."""

import os

import tensorflow as tf


def shard_names(out_dir, prefix, num_shards):
    """Final shard paths in the conventional `<prefix>.tfrecord-00000-of-00004` form."""
    return [os.path.join(out_dir, f"{prefix}.tfrecord-{i:05d}-of-{num_shards:05d}") for i in range(num_shards)]


def write_shards(serialized_examples, out_dir, prefix, num_shards):
    """Writes examples round-robin into shards; returns the paths and the count.

    Every shard is written under a temporary name and renamed only after all
    of them are complete, so an interrupted run leaves the old shards intact.
    """
    os.makedirs(out_dir, exist_ok=True)
    finals = shard_names(out_dir, prefix, num_shards)
    temps = [f"{path}.tmp-{os.getpid()}" for path in finals]
    writers = [tf.io.TFRecordWriter(path) for path in temps]
    count = 0
    try:
        for count, example in enumerate(serialized_examples, start=1):
            writers[(count - 1) % num_shards].write(example)
    except BaseException:
        for writer, path in zip(writers, temps):
            writer.close()
            os.remove(path)
        raise
    for writer in writers:
        writer.close()
    for temp, final in zip(temps, finals):
        os.replace(temp, final)
    return finals, count
