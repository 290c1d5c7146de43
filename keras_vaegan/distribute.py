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


def set_inter_op_threads(train_config):
    """Runs TensorFlow's independent ops on `train_config.inter_op_threads` threads (0: its default); call
    before TensorFlow runs its first op, after which the count is fixed and another one is a ConfigError.

    TensorFlow caches oneDNN's primitives per thread that runs them, so every inter-op thread holds its own
    copies: one thread lowers a step's peak memory and costs it speed (docs/benchmarks.md).
    """
    threads = train_config.inter_op_threads
    current = tf.config.threading.get_inter_op_parallelism_threads()
    if threads == current:
        return
    try:
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:
        raise ConfigError(
            f"inter_op_threads: TensorFlow already runs with {current or 'its default number of'} inter-op "
            f"threads; {threads or 'the default'} must be set before it starts"
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
