"""A tf.distribute strategy chosen by name, built in one place."""

import json
import os

import tensorflow as tf

from keras_vaegan.config import ConfigError


def split_cpu(num_devices):
    """Splits the CPU into `num_devices` logical devices (tests, and trying mirrored on CPU).

    Must run before TensorFlow initializes its devices.
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)


def inter_op_threads(train_config):
    """The inter-op thread count `train_config` asks for, -1 resolved: one thread for mixed_bfloat16 on the
    CPU, else 0 (TensorFlow's default, one per core).

    TensorFlow caches oneDNN's primitives per thread that runs them, so every inter-op thread holds its own
    copies; under bfloat16 one thread keeps a step's peak memory below that of two (docs/benchmarks.md).
    """
    if train_config.inter_op_threads != -1:
        return train_config.inter_op_threads
    on_cpu = not tf.config.list_physical_devices("GPU")
    return 1 if on_cpu and train_config.precision == "mixed_bfloat16" else 0


def set_inter_op_threads(train_config):
    """Applies `inter_op_threads(train_config)`; call before TensorFlow runs its first op.

    Once TensorFlow runs, the count is fixed: a count asked for by number that differs is a ConfigError,
    the one chosen by precision is left as it is (a process that trains after other TensorFlow work).
    """
    threads = inter_op_threads(train_config)
    current = tf.config.threading.get_inter_op_parallelism_threads()
    if threads == current:
        return
    try:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        if train_config.inter_op_threads != -1:
            raise ConfigError(
                f"inter_op_threads: TensorFlow already runs with {current or 'its default'} inter-op threads; "
                f"{threads} must be set before it starts"
            ) from None


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("distribution_strategy: multi_worker_mirrored needs the TF_CONFIG environment variable")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        index = int(task["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG: not a cluster spec with cluster.worker and task.index ({error})") from None
    if task.get("type") != "worker" or not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG: task {task} does not name one of the {len(workers)} workers")


def make_strategy(name):
    """one_device | mirrored | multi_worker_mirrored.

    one_device runs on the first GPU if any, else on the CPU (the default strategy). mirrored uses every
    local GPU (or every logical CPU). multi_worker_mirrored reads TF_CONFIG.
    """
    if name == "one_device":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.OneDeviceStrategy(gpus[0].name)
        # On the CPU, TensorFlow's default strategy: OneDeviceStrategy would feed the steps through a
        # per-device tf.data iterator whose deletion waits for its autotuning thread, which sleeps up to
        # a minute, and `fit` deletes one at every checkpoint (measured: 35-45 s at half the demo's checkpoints).
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker_mirrored":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ConfigError(f"distribution_strategy: unknown strategy {name!r}")


def is_chief():
    """True on the worker that writes checkpoints, samples and the final model."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return True
    config = json.loads(raw)
    task = config.get("task", {})
    if "chief" in config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0
