"""3D-GAN: generator and discriminator trained with a gated discriminator update.

Besides the paper's nonsaturating loss with its accuracy gate, D and G can
train on the hinge or Wasserstein loss, with an R1 or WGAN-GP gradient
penalty and instance noise (Gaussian noise on every shape D sees, fading
out linearly); 3D-VAE-GAN inherits all of them through `discriminator_step`
and `adversarial_loss`.
"""

import dataclasses

import keras
import tensorflow as tf

from keras_vaegan import gated_update, losses
from keras_vaegan.discriminator import Discriminator
from keras_vaegan.generator import Generator
from keras_vaegan.layers import SERIALIZATION_PACKAGE, build_once

# Independent random streams drawn from (seed, step, stream); (seed, -1) is the fixed z of sample pictures.
PRIOR_STREAM_D, PRIOR_STREAM_G, POSTERIOR_STREAM = 0, 1, 2
# Streams of the stabilizers, drawn from (seed, -(4 step + stream) - 3) so that the ones above never change.
REAL_NOISE_STREAM, FAKE_NOISE_STREAM, G_NOISE_STREAM, INTERPOLATION_STREAM = 0, 1, 2, 3


@dataclasses.dataclass
class DiscriminatorPass:
    """D's forward pass of one step: its tape and scaled loss (for the update), per-example loss, global
    accuracy, whether the gate is open, G's shapes (before instance noise) and D's logits of them."""

    tape: tf.GradientTape
    scaled_loss: tf.Tensor
    per_example: tf.Tensor
    accuracy: tf.Tensor
    gate_open: tf.Tensor
    generated: tf.Tensor
    fake_logits: tf.Tensor


@dataclasses.dataclass
class GeneratorPass:
    """G's forward pass inside D's pass, kept for G's update: a persistent tape watching G's weights, G's
    shapes, and the per-example and scaled G loss of D's logits of them (D as it was before its update)."""

    tape: tf.GradientTape
    generated: tf.Tensor
    per_example: tf.Tensor
    scaled_loss: tf.Tensor

    def gradients(self, variables, upstream=None):
        """G's gradients of the scaled loss, or (with `upstream`, the gradients of another loss with
        respect to the shapes) of that loss."""
        if upstream is None:
            return self.tape.gradient(self.scaled_loss, variables)
        return self.tape.gradient(self.generated, variables, output_gradients=upstream)


def replica_slice(global_values, local_batch_size):
    """This replica's rows of a tensor drawn identically on every replica.

    Drawing noise for the whole global batch from one seed and slicing it
    gives each replica independent noise and makes a mirrored step equal to a
    single-device step on the same global batch.
    """
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    start = tf.cast(replica, tf.int32) * local_batch_size
    return global_values[start : start + local_batch_size]


def global_sum(value):
    """Sum of a per-replica value over all replicas (identity on one device)."""
    return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class GAN3D(keras.Model):
    """3D-GAN of Wu et al.: non-saturating loss, D updated only while its accuracy <= threshold.

    `fit` takes batches of voxels (batch, R, R, R, 1) in [0, 1]. Metrics:
    d_loss (with the penalty), g_loss, d_acc (over all replicas), d_updated (1 when D stepped).
    `gan_loss`: "nonsaturating" (the paper), "hinge" or "wgan_gp"; `gradient_penalty`
    weighs R1 on real shapes (nonsaturating, hinge) or WGAN-GP's interpolate penalty.
    """

    def __init__(
        self,
        resolution=64,
        latent_dim=200,
        latent_prior="uniform",
        d_accuracy_threshold=0.8,
        label_smoothing=0.0,
        seed=0,
        synchronized_batch_norm=False,
        generator=None,
        discriminator=None,
        latent_std=1.0,
        gan_loss="nonsaturating",
        gradient_penalty=0.0,
        instance_noise=0.0,
        instance_noise_steps=0,
        discriminator_norm="batch",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.resolution = resolution
        self.latent_dim = latent_dim
        self.latent_prior = latent_prior
        self.d_accuracy_threshold = d_accuracy_threshold
        self.label_smoothing = label_smoothing
        self.seed = seed
        self.synchronized_batch_norm = synchronized_batch_norm
        self.latent_std = latent_std
        self.gan_loss = gan_loss
        self.gradient_penalty = gradient_penalty
        self.instance_noise = instance_noise
        self.instance_noise_steps = instance_noise_steps
        self.discriminator_norm = discriminator_norm
        self.generator = generator or Generator(resolution, latent_dim, synchronized_batch_norm, name="generator")
        self.discriminator = discriminator or Discriminator(
            resolution, synchronized_batch_norm, norm=discriminator_norm, name="discriminator"
        )
        build_once(self.generator, (None, latent_dim))
        build_once(self.discriminator, (None, resolution, resolution, resolution, 1))
        self.step = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False, aggregation="only_first_replica",
            name="step",
        )
        # 1 when D stepped in the last step. Nothing in the step reads it since the gate skips D's update
        # (gated_update); it stays a weight so that model.keras files keep the layout they were saved with.
        self.d_gate = self.add_weight(
            shape=(), initializer="ones", trainable=False, aggregation="only_first_replica", name="d_gate"
        )
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("d_loss", "g_loss", "d_acc", "d_updated")
        }
        self.built = True

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        """One optimizer per sub-model; D's updates are taken only while its gate is open."""
        super().compile(**kwargs)
        self.optimizer = None  # Keras' default RMSprop would hold unused slots for every weight
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        # Built here, in the strategy scope: built lazily inside a distributed step they fail.
        g_optimizer.build(self.generator.trainable_variables)
        d_optimizer.build(self.discriminator.trainable_variables)

    def get_compile_config(self):
        """Optimizers are not saved in `.keras` files; training state lives in checkpoints."""
        return None

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def sample_latent(self, batch_size, seed):
        """Latent vectors from the prior: uniform [0, 1) (the authors' sampler) or N(0, latent_std^2 I)."""
        shape = [batch_size, self.latent_dim]
        if self.latent_prior == "uniform":
            return tf.random.stateless_uniform(shape, seed)
        return self.latent_std * tf.random.stateless_normal(shape, seed)

    def _noise_seed(self, stream):
        return tf.stack([tf.cast(self.seed, tf.int64), self.step.value * 3 + stream])

    def _stabilizer_seed(self, stream):
        return tf.stack([tf.cast(self.seed, tf.int64), -(self.step.value * 4 + stream) - 3])

    def _replica_latent(self, local_batch_size, stream):
        num_replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        z = self.sample_latent(local_batch_size * num_replicas, self._noise_seed(stream))
        return replica_slice(z, local_batch_size)

    def _replica_draw(self, draw, like, stream):
        """This replica's rows of `draw(shape, seed)` for the global batch of `like`'s shape."""
        local_batch_size = tf.shape(like)[0]
        num_replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        shape = tf.concat([[local_batch_size * num_replicas], tf.shape(like)[1:]], axis=0)
        return replica_slice(draw(shape, self._stabilizer_seed(stream)), local_batch_size)

    def with_instance_noise(self, voxels, stream):
        """`voxels` plus Gaussian noise whose deviation fades linearly from `instance_noise` to 0 over
        `instance_noise_steps` (0: it stays at `instance_noise`)."""
        if not self.instance_noise:
            return voxels
        deviation = tf.constant(self.instance_noise, tf.float32)
        if self.instance_noise_steps:
            progress = tf.cast(self.step, tf.float32) / float(self.instance_noise_steps)
            deviation *= tf.maximum(1.0 - progress, 0.0)
        noise = self._replica_draw(tf.random.stateless_normal, voxels, stream)
        return voxels + tf.cast(deviation * noise, voxels.dtype)

    def _discriminator_loss(self, real_logits, fake_logits):
        if self.gan_loss == "hinge":
            return losses.hinge_discriminator_loss(real_logits, fake_logits)
        if self.gan_loss == "wgan_gp":
            return losses.wasserstein_discriminator_loss(real_logits, fake_logits)
        return losses.discriminator_loss(real_logits, fake_logits, self.label_smoothing)

    def _input_gradients(self, voxels):
        """(D's logits of `voxels`, their gradients with respect to `voxels`); call inside D's tape."""
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(voxels)
            logits = self.discriminator(voxels, training=True)
            total = tf.reduce_sum(logits)
        return logits, tape.gradient(total, voxels)

    def _interpolate_penalty(self, real, fake):
        """WGAN-GP's penalty on random points between real and generated shapes."""
        mix = self._replica_draw(tf.random.stateless_uniform, real[:, :1, :1, :1, :1], INTERPOLATION_STREAM)
        _, gradients = self._input_gradients(mix * real + (1.0 - mix) * fake)
        return losses.interpolate_penalty(gradients)

    def discriminator_pass(self, real, global_batch_size):
        """D's forward pass on `real` and on shapes G makes from prior z; a DiscriminatorPass.

        Real and fake shapes go through D as separate batches, as in the paper's
        ports: D's BatchNorm then sees the same batch make-up as in G's update
        (a mixed batch here and a fake-only one there lets D call fakes real in
        G's step). The fake pass waits for the real one so that synchronized
        BatchNorm all-reduces run in one order on every replica.
        """
        local_batch_size = tf.shape(real)[0]
        generated = self.generator(self._replica_latent(local_batch_size, PRIOR_STREAM_D), training=True)
        real = self.with_instance_noise(real, REAL_NOISE_STREAM)
        fake = self.with_instance_noise(generated, FAKE_NOISE_STREAM)
        r1 = self.gradient_penalty and self.gan_loss != "wgan_gp"
        with tf.GradientTape() as tape:
            if r1:
                real_logits, real_gradients = self._input_gradients(real)
            else:
                real_logits = self.discriminator(real, training=True)
            with tf.control_dependencies([real_logits]):
                fake_logits = self.discriminator(fake, training=True)
            per_example = self._discriminator_loss(real_logits, fake_logits)
            if r1:
                per_example += self.gradient_penalty * losses.r1_penalty(real_gradients)
            elif self.gradient_penalty:
                per_example += self.gradient_penalty * self._interpolate_penalty(real, fake)
            scaled_loss = self.d_optimizer.scale_loss(losses.global_mean(per_example, global_batch_size))
        accuracy = global_sum(tf.reduce_sum(losses.discriminator_accuracy(real_logits, fake_logits)))
        accuracy = accuracy / tf.cast(global_batch_size, tf.float32)
        return DiscriminatorPass(tape, scaled_loss, per_example, accuracy, self.gate_open(accuracy), generated,
                                 fake_logits)

    def reuses_generator_pass(self):
        """Whether G's update takes G's shapes from D's pass (see `gan_step`); not with synchronized
        BatchNorm, whose all-reduces a cond cannot hold under mirrored replicas."""
        return not self.synchronized_batch_norm

    def gate_open(self, accuracy):
        """Whether D steps: its accuracy over the global batch is at most `d_accuracy_threshold`."""
        return accuracy <= self.d_accuracy_threshold

    def after_discriminator_update(self, tensor):
        """`tensor`, made to wait until D's weights are updated.

        Keeps the all-reduces of D's update and of the next networks in one
        order on every replica (collectives launched out of order deadlock).
        """
        with tf.control_dependencies([self.discriminator.trainable_variables[-1].value]):
            return tf.identity(tensor)

    def prior_latent(self, local_batch_size):
        """This replica's prior samples for the generator's update."""
        return self._replica_latent(local_batch_size, PRIOR_STREAM_G)

    def adversarial_loss(self, fake):
        """Per-example G loss of generated shapes under `gan_loss` (call inside a tape)."""
        return self.generator_loss(self.discriminator(self.with_instance_noise(fake, G_NOISE_STREAM), training=True))

    def generator_loss(self, fake_logits):
        """Per-example G loss of D's logits of generated shapes under `gan_loss`."""
        if self.gan_loss == "nonsaturating":
            return losses.non_saturating_generator_loss(fake_logits)
        return losses.critic_generator_loss(fake_logits)

    def scaled_generator_loss(self, per_example, global_batch_size):
        """G's loss for its gradients: the mean of `per_example` over the global batch, scaled by G's optimizer."""
        return self.g_optimizer.scale_loss(losses.global_mean(per_example, global_batch_size))

    def update_trackers(self, **values):
        """Feeds per-example or scalar values to the Mean trackers of the same names."""
        for name, value in values.items():
            self.trackers[name].update_state(value)
        results = {name: self.trackers[name].result() for name in values}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras 3.15 reduces multi-worker step outputs along axis 0, which fails
            # on scalars (tensorflow/tensorflow#72388); it reduces [1] back to a scalar.
            results = {name: tf.reshape(value, [1]) for name, value in results.items()}
        return results

    def global_batch_size(self, local_batch):
        return tf.shape(local_batch)[0] * tf.distribute.get_replica_context().num_replicas_in_sync

    def gan_step(self, real):
        """The 3D-GAN update on a batch of real voxels; returns the logged metrics.

        G has not changed since D's pass, so its update reuses that pass's G
        forward (the draw D trained on, as PyTorch's DCGAN example does): when
        D stepped, D as it now is scores those shapes again; when its gate
        closed, D is unchanged and its pass's logits already are G's loss. A
        step then runs G on the prior once, and a closed step D on fakes once.
        With synchronized BatchNorm G draws new z and runs its own pass.
        """
        global_batch_size = self.global_batch_size(real)
        d_pass, gate, g_pass = self.discriminator_step(real, global_batch_size)
        variables = self.generator.trainable_variables

        def own_pass():
            with tf.GradientTape() as tape:
                z = self.after_discriminator_update(self.prior_latent(tf.shape(real)[0]))
                g_per_example = self.adversarial_loss(self.generator(z, training=True))
                scaled_loss = self.scaled_generator_loss(g_per_example, global_batch_size)
            return tape.gradient(scaled_loss, variables), g_per_example

        def gate_opened():
            with tf.GradientTape() as tape:
                tape.watch(g_pass.generated)
                g_per_example = self.adversarial_loss(self.after_discriminator_update(g_pass.generated))
                scaled_loss = self.scaled_generator_loss(g_per_example, global_batch_size)
            return g_pass.gradients(variables, tape.gradient(scaled_loss, g_pass.generated)), g_per_example

        if self.reuses_generator_pass():
            gradients, g_per_example = tf.cond(
                d_pass.gate_open, gate_opened, lambda: (g_pass.gradients(variables), g_pass.per_example))
        else:
            gradients, g_per_example = own_pass()
        self.g_optimizer.apply(gradients, variables)
        self.step.assign_add(1)
        return self.update_trackers(d_loss=d_pass.per_example, g_loss=g_per_example, d_acc=d_pass.accuracy,
                                    d_updated=gate)

    def discriminator_step(self, real, global_batch_size):
        """D's pass and gated update; returns (the DiscriminatorPass, the gate as 1.0 when D stepped or 0.0,
        the GeneratorPass of G's forward in it).

        A closed gate skips D's backward pass and update (keras_vaegan.gated_update):
        its weights and Adam's state stay exactly as they were.
        """
        with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
            tape.watch([variable.value for variable in self.generator.trainable_variables])
            d_pass = self.discriminator_pass(real, global_batch_size)
            g_per_example = self.generator_loss(d_pass.fake_logits)
            scaled_loss = self.scaled_generator_loss(g_per_example, global_batch_size)
        gated_update.minimize_if(d_pass.gate_open, self.d_optimizer, d_pass.tape, d_pass.scaled_loss,
                                 self.discriminator.trainable_variables, backward_syncs=self.synchronized_batch_norm)
        gate = tf.cast(d_pass.gate_open, tf.float32)
        self.d_gate.assign(gate)
        return d_pass, gate, GeneratorPass(tape, d_pass.generated, g_per_example, scaled_loss)

    def train_step(self, data):
        return self.gan_step(data)

    def get_config(self):
        config = super().get_config()
        config.update(
            resolution=self.resolution,
            latent_dim=self.latent_dim,
            latent_prior=self.latent_prior,
            d_accuracy_threshold=self.d_accuracy_threshold,
            label_smoothing=self.label_smoothing,
            seed=self.seed,
            synchronized_batch_norm=self.synchronized_batch_norm,
            latent_std=self.latent_std,
            gan_loss=self.gan_loss,
            gradient_penalty=self.gradient_penalty,
            instance_noise=self.instance_noise,
            instance_noise_steps=self.instance_noise_steps,
            discriminator_norm=self.discriminator_norm,
            generator=keras.saving.serialize_keras_object(self.generator),
            discriminator=keras.saving.serialize_keras_object(self.discriminator),
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("generator", "discriminator", "encoder"):
            if isinstance(config.get(name), dict):
                config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
