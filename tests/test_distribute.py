"""Distribution: a mirrored step equals a single-device step; strategies by name; multi-worker training.

Splitting the CPU into logical devices must happen before TensorFlow initializes
its devices, which this test process has long done: the mirrored checks run in
a subprocess. Only one MirroredStrategy is created per process (two different
MirroredStrategy objects in one process break the collectives with "Shape
mismatch in the collective instance"); the single-device reference runs use
OneDeviceStrategy.
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_vaegan import data, distribute, scan_cache, training
from keras_vaegan.config import ConfigError, ModelConfig, TrainConfig
from keras_vaegan.gan import GAN3D

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
ATOL = 1e-5

# One process, one MirroredStrategy over two logical CPUs, reused for both models.
MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from keras_vaegan import distribute
    distribute.split_cpu(2)  # before anything initializes TensorFlow's devices
    import keras
    import tensorflow as tf
    from keras_vaegan.adam import FusedAdam
    from keras_vaegan.gan import GAN3D, replica_slice
    from keras_vaegan.vaegan import VAEGAN3D

    mirrored = distribute.make_strategy("mirrored")
    single = tf.distribute.OneDeviceStrategy("/cpu:0")
    # SGD, not Adam: Adam's first step is about lr * sign(g), which turns float noise on
    # near-zero gradients into full-size updates, so it is no fair equality test.
    LEARNING_RATE = 1e-3

    def build(cls, strategy, weights, learning_rate=LEARNING_RATE, **kwargs):
        with strategy.scope():
            model = cls(resolution=32, synchronized_batch_norm=True, d_accuracy_threshold=1.0, seed=5, **kwargs)
            if weights is not None:
                model.set_weights(weights)
            names = ["g_optimizer", "d_optimizer"] + (["e_optimizer"] if cls is VAEGAN3D else [])
            model.compile(**{name: keras.optimizers.SGD(learning_rate) for name in names})
        return model

    rng = np.random.default_rng(0)
    voxels = (rng.random((4, 32, 32, 32, 1)) < 0.3).astype("float32")
    images = rng.random((4, 32, 32, 3)).astype("float32")
    results = {"replicas": mirrored.num_replicas_in_sync}
    # The hinge loss through a spectrally normalized D moves G little: a larger rate gives the test teeth.
    stabilized = dict(image_size=32, gan_loss="hinge", gradient_penalty=1.0, instance_noise=0.2,
                      instance_noise_steps=10, discriminator_norm="spectral", learning_rate=0.01)
    cases = [
        ("GAN3D", GAN3D, voxels, {}),
        ("VAEGAN3D", VAEGAN3D, (images, voxels), {"image_size": 32}),
        ("VAEGAN3D_stabilized", VAEGAN3D, (images, voxels), stabilized),
    ]
    for name, cls, batch, kwargs in [case for case in cases if case[0] in sys.argv[2].split(",")]:
        keras.utils.set_random_seed(1)
        reference = build(cls, single, None, **kwargs)
        # Spread G's outputs: at initialization every generated voxel is ~0.5, D's BatchNorm
        # over a batch of fakes then divides by a variance that synchronized BatchNorm computes
        # as E[x^2] - E[x]^2 (catastrophic cancellation), and the two summation orders differ
        # by up to 8% of an update. With varied fakes they agree to ~1e-3 of an update.
        last = reference.generator.blocks[-1].conv.kernel
        last.assign(last * 100.0)
        initial = reference.get_weights()
        single_history = reference.fit(tf.data.Dataset.from_tensors(batch), verbose=0).history
        model = build(cls, mirrored, initial, **kwargs)
        mirrored_history = model.fit(tf.data.Dataset.from_tensors(batch), verbose=0).history
        results[name] = {
            "paths": [v.path for v in reference.weights],
            "trainable": [v.trainable for v in reference.weights],
            "difference": [float(np.max(np.abs(a - b))) for a, b in zip(reference.get_weights(), model.get_weights())],
            "update": [float(np.max(np.abs(a - b))) for a, b in zip(reference.get_weights(), initial)],
            "single": single_history,
            "mirrored": mirrored_history,
        }

    # Noise per replica, from the last trained mirrored VAEGAN3D (step 1) and its single-device twin.
    def per_replica():
        rows = replica_slice(tf.reshape(tf.range(8.0), [4, 2]), 2)
        prior = model.prior_latent(2)
        posterior = model._posterior_sample(tf.zeros([2, 200]), tf.zeros([2, 200]))
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group
        return rows, prior, posterior, replica

    values = tf.function(lambda: mirrored.run(per_replica))()
    local = [[t.numpy().tolist() for t in mirrored.experimental_local_results(v)] for v in values]
    results["noise"] = {
        "rows": local[0],
        "prior": local[1],
        "posterior": local[2],
        "replica_ids": local[3],
        "single_prior": reference.prior_latent(4).numpy().tolist(),
        "single_posterior": reference._posterior_sample(tf.zeros([4, 200]), tf.zeros([4, 200])).numpy().tolist(),
        "steps": [int(model.step.numpy()), int(reference.step.numpy())],
    }

    if "GAN3D_gated" in sys.argv[2].split(","):
        # D without synchronized BatchNorm (its backward pass then sits in the gate's cond), answering 1
        # everywhere: accuracy 0.5, so a threshold of 0.25 closes the gate and 0.5 opens it.
        with mirrored.scope():
            gated = GAN3D(resolution=32, d_accuracy_threshold=0.25, seed=5)
            gated.compile(g_optimizer=FusedAdam(1e-3), d_optimizer=FusedAdam(1e-3))
        last = gated.discriminator.blocks[-1].conv
        last.kernel.assign(np.zeros(last.kernel.shape, "float32"))
        last.bias.assign(np.ones(last.bias.shape, "float32"))
        state = lambda: gated.discriminator.trainable_variables + gated.d_optimizer.variables
        changed = lambda before: [v.path for v, b in zip(state(), before) if not np.array_equal(v.numpy(), b)]
        before = [v.numpy() for v in state()]
        closed = gated.fit(tf.data.Dataset.from_tensors(voxels).repeat(2), verbose=0).history["d_updated"]
        changed_closed = changed(before)
        gated.d_accuracy_threshold = 0.5
        gated.train_function = None
        opened = gated.fit(tf.data.Dataset.from_tensors(voxels), verbose=0).history["d_updated"]
        results["gated"] = {"closed": closed, "changed_closed": changed_closed, "opened": opened,
                            "changed_open": changed(before), "d_iterations": int(gated.d_optimizer.iterations.numpy()),
                            "g_iterations": int(gated.g_optimizer.iterations.numpy())}
    if "FusedAdam" in sys.argv[2].split(","):
        # Replica i applies gradient (i + 1) g: both copies must take the step of the sum, 3 g, on one device.
        start, gradient = np.linspace(-1.0, 1.0, 6, dtype="float32"), np.linspace(0.5, -2.0, 6, dtype="float32")

        def adam(strategy, replica_gradient):
            with strategy.scope():
                variable = keras.Variable(start)
                optimizer = FusedAdam(0.1, beta_1=0.5)
                optimizer.build([variable])
            step = lambda: optimizer.apply([replica_gradient()], [variable])
            for _ in range(2):
                tf.function(lambda: strategy.run(step))()
            return [t.numpy().tolist() for t in strategy.experimental_local_results(variable.value)]

        replica_id = lambda: tf.cast(tf.distribute.get_replica_context().replica_id_in_sync_group, tf.float32)
        results["fused_adam"] = {"start": start.tolist(),
                                 "mirrored": adam(mirrored, lambda: (replica_id() + 1.0) * gradient),
                                 "single": adam(single, lambda: tf.constant(3.0 * gradient))}
    with open(sys.argv[1], "w") as handle:
        json.dump(results, handle)
    """
)


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _tail(log, lines=40):
    """The end of a subprocess log without TensorFlow's start-up chatter."""
    kept = [line for line in log.splitlines() if not line.startswith(("I0000", "W0000", "WARNING: All log"))]
    return "\n".join(kept[-lines:])


def run_mirrored(directory, cases):
    """The results of MIRRORED_SCRIPT for the named cases (comma-separated), run in a new process."""
    script = directory / "mirrored_step.py"
    script.write_text(MIRRORED_SCRIPT)
    output = directory / "results.json"
    process = subprocess.run(
        [sys.executable, str(script), str(output), cases], cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=600,
    )
    assert process.returncode == 0, _tail(process.stderr)
    return json.loads(output.read_text())


@pytest.fixture(scope="module")
def mirrored_results(tmp_path_factory):
    """3D-GAN with a BatchNorm D, and 3D-VAE-GAN with every stabilizer: between them, every network and loss;
    then a 3D-GAN whose gate closes and opens, and FusedAdam's step on its own."""
    return run_mirrored(tmp_path_factory.mktemp("mirrored"), "GAN3D,VAEGAN3D_stabilized,GAN3D_gated,FusedAdam")


def test_two_replicas(mirrored_results):
    assert mirrored_results["replicas"] == 2


@pytest.mark.parametrize("name", ["GAN3D", "VAEGAN3D_stabilized", pytest.param("VAEGAN3D", marks=pytest.mark.large)])
def test_mirrored_step_equals_single_device_step(name, tmp_path, request):
    """VAEGAN3D_stabilized: hinge loss, R1 penalty, instance noise and a spectrally normalized D. VAEGAN3D (the
    paper's losses, a BatchNorm D) takes its own process, a slow test: 3D-GAN already covers that D."""
    alone = name == "VAEGAN3D"  # the shared process is started only for the cases it runs
    result = (run_mirrored(tmp_path, name) if alone else request.getfixturevalue("mirrored_results"))[name]
    # Same weights (trainable, BatchNorm statistics, step, gate) after one step on the same global batch.
    far = {p: d for p, d in zip(result["paths"], result["difference"]) if not d <= ATOL}
    assert far == {}
    # The comparison has teeth: every network moved by far more than the tolerance, so a
    # wrong gradient scale (e.g. a per-replica mean) or mismatched noise would show.
    networks = ("generator", "discriminator") + (("encoder",) if name.startswith("VAEGAN3D") else ())
    for network in networks:
        moved = [u for p, u, t in zip(result["paths"], result["update"], result["trainable"]) if t and p.startswith(network)]
        still = [p for p, u, t in zip(result["paths"], result["update"], result["trainable"])
                 if t and p.startswith(network) and not u > 0]
        # Every trainable variable took a step; but under the hinge loss D's last bias gets
        # -1 from each real and +1 from each fake while every logit is inside the margin: 0 exactly.
        expected_still = ["discriminator/block5/spectral_conv/conv/bias"] if "stabilized" in name else []
        assert still == (expected_still if network == "discriminator" else []), network
        assert max(moved) > 20 * ATOL, network
    for metric, values in result["single"].items():
        assert result["mirrored"][metric] == pytest.approx(values, rel=1e-4, abs=1e-5), metric
    assert result["single"]["d_updated"] == [1.0]


def test_a_closed_gate_skips_the_mirrored_discriminator_update_and_an_open_one_takes_it(mirrored_results):
    gated = mirrored_results["gated"]
    assert gated["closed"] == [0.0] and gated["changed_closed"] == []  # D and Adam's state bitwise unchanged
    assert gated["opened"] == [1.0] and gated["d_iterations"] == 1 and gated["g_iterations"] == 3
    assert {"discriminator/block5/conv/kernel", "discriminator/block5/conv/bias"} <= set(gated["changed_open"])


def test_fused_adam_steps_every_replica_on_the_sum_of_their_gradients(mirrored_results):
    adam = mirrored_results["fused_adam"]
    first, second = adam["mirrored"]
    assert first == second == adam["single"][0]
    assert not np.allclose(first, adam["start"])


def test_replica_slice_gives_each_replica_its_rows(mirrored_results):
    noise = mirrored_results["noise"]
    assert noise["replica_ids"] == [0, 1]
    assert noise["rows"] == [[[0.0, 1.0], [2.0, 3.0]], [[4.0, 5.0], [6.0, 7.0]]]


@pytest.mark.parametrize("kind", ["prior", "posterior"])
def test_replicas_draw_different_noise_that_matches_one_device(mirrored_results, kind):
    noise = mirrored_results["noise"]
    assert noise["steps"] == [1, 1]
    first, second = (np.array(v) for v in noise[kind])
    assert first.shape == second.shape == (2, 200)
    assert not np.allclose(first, second)
    # The two replicas' slices are the rows of one global draw, as on a single device.
    np.testing.assert_allclose(np.concatenate([first, second]), np.array(noise[f"single_{kind}"]), atol=1e-6)


# ---------------------------------------------------------------- make_strategy


def test_one_device_strategy_on_the_cpu_reads_the_dataset_itself():
    strategy = distribute.make_strategy("one_device")
    assert strategy.num_replicas_in_sync == 1
    # No per-device iterator in between (TensorFlow waits up to a minute for its tuning thread when
    # `fit` deletes one, at every checkpoint).
    dataset = tf.data.Dataset.range(4)
    assert strategy.experimental_distribute_dataset(dataset) is dataset


INTER_OP_SCRIPT = textwrap.dedent(
    """
    import tensorflow as tf
    from keras_vaegan import distribute
    from keras_vaegan.config import ConfigError, TrainConfig
    distribute.set_inter_op_threads(TrainConfig(inter_op_threads=1))
    tf.constant(1.0) + 1.0  # TensorFlow starts
    print("threads", tf.config.threading.get_inter_op_parallelism_threads())
    distribute.set_inter_op_threads(TrainConfig(inter_op_threads=1))  # the count it runs with: nothing to do
    for threads in (2, 0):
        try:
            distribute.set_inter_op_threads(TrainConfig(inter_op_threads=threads))
        except ConfigError as error:
            print(error)
    """
)


def test_inter_op_threads_are_set_before_tensorflow_starts_and_refused_after():
    process = subprocess.run([sys.executable, "-c", INTER_OP_SCRIPT], cwd=ROOT, env=_env(), capture_output=True,
                             text=True, timeout=120)
    assert process.returncode == 0, _tail(process.stderr)
    assert process.stdout.splitlines() == [
        "threads 1",
        "inter_op_threads: TensorFlow already runs with 1 inter-op threads; 2 must be set before it starts",
        "inter_op_threads: TensorFlow already runs with 1 inter-op threads; the default must be set before it starts",
    ]


def test_training_sets_the_inter_op_threads_before_it_reads_the_records(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(distribute, "set_inter_op_threads", lambda config: calls.append(("threads", config)))

    def scan(*args, **kwargs):
        calls.append(("scan", None))
        raise RuntimeError("stop here")

    monkeypatch.setattr(scan_cache, "scan_records", scan)
    monkeypatch.setattr(data, "find_records", lambda data_dir: [])
    train_config = TrainConfig(inter_op_threads=1)
    with pytest.raises(RuntimeError, match="stop here"):
        training.train(ModelConfig(), train_config, str(tmp_path), str(tmp_path / "model"), verbose=False)
    assert calls == [("threads", train_config), ("scan", None)]


def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match="^distribution_strategy:"):
        distribute.make_strategy("parameter_server")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker_mirrored")
    monkeypatch.setenv("TF_CONFIG", "")
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        distribute.make_strategy("multi_worker_mirrored")


@pytest.mark.parametrize(
    "tf_config",
    [
        "not json",
        "[]",
        json.dumps({"task": {"type": "worker", "index": 0}}),
        json.dumps({"cluster": {"worker": ["localhost:1"]}}),
        json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker"}}),
        json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": "first"}}),
        json.dumps({"cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 2}}),
        json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": -1}}),
        json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "ps", "index": 0}}),
    ],
)
def test_multi_worker_rejects_malformed_tf_config(monkeypatch, tf_config):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ConfigError) as info:
        distribute.make_strategy("multi_worker_mirrored")
    assert "TF_CONFIG" in str(info.value)


def test_is_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief()
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert not distribute.is_chief()


# ---------------------------------------------------------------- multi-worker, for real

WORKER_SCRIPT = textwrap.dedent(
    """
    import json, os, shutil, sys, time
    import numpy as np
    from keras_vaegan import distribute
    import tensorflow as tf
    from keras_vaegan.config import ModelConfig, TrainConfig
    from keras_vaegan.models import build_model

    out_dir, model_dir = sys.argv[1], sys.argv[2]
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    start = time.time()
    strategy = distribute.make_strategy("multi_worker_mirrored")
    model_config = ModelConfig(model_type="gan", resolution=32, synchronized_batch_norm=True).validate()
    train_config = TrainConfig(
        batch_size=4, train_steps=3, generator_learning_rate=1e-3, discriminator_learning_rate=1e-3,
        d_accuracy_threshold=1.0, distribution_strategy="multi_worker_mirrored",
    ).validate()
    with strategy.scope():
        model = build_model(model_config, train_config)
    voxels = (np.random.default_rng(0).random((12, 32, 32, 32, 1)) < 0.3).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices(voxels).batch(train_config.batch_size).repeat()
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    history = model.fit(dataset.with_options(options), epochs=1, steps_per_epoch=3, verbose=0).history
    # Every worker writes (saving may need collectives); only the chief's file is kept.
    checkpoint = tf.train.Checkpoint(model=model)
    chief = distribute.is_chief()
    target = model_dir if chief else os.path.join(out_dir, f"worker{index}-scratch")
    path = checkpoint.write(os.path.join(target, "ckpt"))
    if not chief:
        shutil.rmtree(target)
    np.savez(os.path.join(out_dir, f"worker{index}.npz"), *model.get_weights())
    with open(os.path.join(out_dir, f"worker{index}.json"), "w") as handle:
        json.dump({"chief": chief, "path": path, "history": history, "step": int(model.step.numpy()),
                   "replicas": strategy.num_replicas_in_sync, "seconds": time.time() - start}, handle)
    """
)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.large
def test_multi_worker_mirrored_trains_and_the_chief_checkpoints(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER_SCRIPT)
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    workers = [f"localhost:{port}" for port in _free_ports(2)]
    processes = []
    start = time.time()
    for index in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        log = open(tmp_path / f"worker{index}.log", "w")
        processes.append(
            subprocess.Popen(
                [sys.executable, str(script), str(tmp_path), str(model_dir)],
                cwd=ROOT,
                env=_env(TF_CONFIG=tf_config),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    try:
        codes = [p.wait(timeout=600) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    logs = [_tail((tmp_path / f"worker{i}.log").read_text()) for i in range(2)]
    assert codes == [0, 0], "\n\n".join(logs)
    elapsed = time.time() - start
    results = [json.loads((tmp_path / f"worker{i}.json").read_text()) for i in range(2)]
    print(f"2-worker MultiWorkerMirroredStrategy, 3 steps at 32^3: {elapsed:.1f} s wall")
    assert [r["chief"] for r in results] == [True, False]
    assert all(r["replicas"] == 2 for r in results)
    assert all(r["step"] == 3 for r in results)
    assert all(np.isfinite(v).all() for v in results[0]["history"].values())
    # Synchronous training: both workers hold the same weights.
    weights = [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]
    keys = [f"arr_{i}" for i in range(len(weights[0].files))]
    assert len(keys) == len(weights[1].files) > 0
    for key in keys:
        np.testing.assert_allclose(weights[0][key], weights[1][key], atol=1e-6, err_msg=key)
    # One checkpoint, the chief's, and nothing left behind by the other worker.
    assert sorted(os.listdir(model_dir)) == ["ckpt.data-00000-of-00001", "ckpt.index"]
    assert not (tmp_path / "worker1-scratch").exists()
    restored = GAN3D(resolution=32)
    tf.train.Checkpoint(model=restored).read(results[0]["path"]).assert_existing_objects_matched()
    assert int(restored.step.numpy()) == 3
    assert len(restored.weights) == len(keys)
    for variable, key in zip(restored.weights, keys):
        np.testing.assert_allclose(variable.numpy(), weights[0][key], atol=1e-6, err_msg=variable.path)


@pytest.mark.parametrize(
    "tf_config, chief",
    [
        (None, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
        ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}, False),
        ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}, True),
    ],
)
def test_only_the_chief_writes(monkeypatch, tf_config, chief):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert distribute.is_chief() is chief
