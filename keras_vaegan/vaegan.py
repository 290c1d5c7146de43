"""3D-VAE-GAN: an image encoder feeding the 3D-GAN generator.

L = L_GAN + kl_weight * KL(q(z|y) || p(z)) + reconstruction_weight * ||G(E(y)) - x||^2

With `noise_warmup_steps` > 0 the reparameterization noise is scaled by
min(1, step / noise_warmup_steps) ** 3: E and G first learn as an autoencoder
through the posterior mean, then the noise comes in. Early on G ignores z, so
only the KL term shapes the encoder's variance; Adam normalizes the step size,
so any a1 > 0 drives the posterior to N(0, I) within a few steps and the noise
then hides the image from G (measured on the demo photos: an encoder-generator
autoencoder reached 0.43 IoU in 300 steps without the noise, 0 with it, also
with a1 as low as 0.001 or with the variance started at 0.01). The KL term
keeps its full weight throughout: it is what bounds the code's scale.

With `num_classes` > 0 a linear class head reads E's posterior mean and
`class_weight` times its cross-entropy against the records' class ids joins
E's loss (an auxiliary loss: G still sees only z), pushing the code to
separate the classes (on the IKEA renders it learned the training models'
classes, not those of unseen models: docs/experiments/ikea.md).
"""

import keras
import tensorflow as tf

from keras_vaegan import losses
from keras_vaegan.encoder import ImageEncoder
from keras_vaegan.gan import GAN3D, POSTERIOR_STREAM, replica_slice
from keras_vaegan.layers import SERIALIZATION_PACKAGE, build_once

STAGES = ("joint", "gan", "encoder")
OWN_PRIOR_PASS = "own prior pass"  # VAEGAN3D._joint_gradients: G makes L_GAN's shapes from new prior z


def _added(gradients, more):
    """Two lists of gradients of the same variables, added."""
    return [a + b for a, b in zip(gradients, more)]


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class VAEGAN3D(GAN3D):
    """3D-VAE-GAN of Wu et al. `fit` takes (image, voxels) batches.

    `stage` selects what a step trains, following the paper's two schedules:
    - "joint": D (gated), then E and G together on the full loss;
    - "gan": the 3D-GAN step only (first part of the separate schedule);
    - "encoder": E alone on KL + reconstruction against the frozen G
      (second part of the separate schedule).
    Change `stage` between `fit` calls (the train function is rebuilt).
    """

    def __init__(
        self,
        image_size=256,
        kl_weight=5.0,
        reconstruction_weight=1e-4,
        encoder=None,
        latent_prior="normal",
        noise_warmup_steps=0,
        num_classes=0,
        class_weight=0.0,
        **kwargs,
    ):
        super().__init__(latent_prior=latent_prior, **kwargs)
        self.image_size = image_size
        self.kl_weight = kl_weight
        self.noise_warmup_steps = noise_warmup_steps
        self.reconstruction_weight = reconstruction_weight
        self.encoder = encoder or ImageEncoder(
            image_size, self.latent_dim, self.synchronized_batch_norm, name="encoder"
        )
        build_once(self.encoder, (None, image_size, image_size, 3))
        self.num_classes = num_classes
        self.class_weight = class_weight
        self.class_head = None
        if num_classes:
            self.class_head = keras.layers.Dense(num_classes, dtype="float32", name="class_head")
            self.class_head.build((None, self.latent_dim))
        for name in ("kl_loss", "recon_loss") + (("class_loss", "class_acc") if num_classes else ()):
            self.trackers[name] = keras.metrics.Mean(name=name)
        self._stage = "joint"

    @property
    def stage(self):
        return self._stage

    @stage.setter
    def stage(self, value):
        if value not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {value!r}")
        if value != self._stage:
            self._stage = value
            self.train_function = None

    def compile(self, g_optimizer, d_optimizer, e_optimizer, **kwargs):
        """One optimizer per sub-model."""
        super().compile(g_optimizer, d_optimizer, **kwargs)
        self.e_optimizer = e_optimizer
        e_optimizer.build(self.encoder_variables())

    def encoder_variables(self):
        """What E's optimizer trains: the encoder's weights, and the class head's when there is one."""
        head = self.class_head.trainable_variables if self.class_head else []
        return self.encoder.trainable_variables + head

    def noise_scale(self):
        """Scale of the reparameterization noise at this step: rises from 0 to 1 during the warm-up."""
        if not self.noise_warmup_steps:
            return tf.constant(1.0)
        progress = tf.cast(self.step, tf.float32) / float(self.noise_warmup_steps)
        return tf.minimum(progress, 1.0) ** 3

    def encode(self, images, training=False):
        """(mean, log_variance) of q(z | image)."""
        return self.encoder(images, training=training)

    def reconstruct(self, images, samples=0, seed=0):
        """Occupancy from images (inference): G at the posterior mean, or with `samples` > 0 the mean of G
        over that many draws of z from q(z | image), the model's predictive occupancy (float32; draw i of
        every call uses the seed (seed, i))."""
        mean, log_variance = self.encode(images)
        if not samples:
            return self.generator(mean, training=False)
        deviation = tf.exp(0.5 * tf.cast(log_variance, tf.float32))
        total = 0.0
        for draw in range(samples):
            z = tf.cast(mean, tf.float32) + deviation * tf.random.stateless_normal(tf.shape(mean), [seed, draw])
            total += tf.cast(self.generator(z, training=False), tf.float32)
        return total / samples

    def classify(self, images):
        """Class logits of the class head on the posterior mean (a model built with num_classes > 0)."""
        mean, _ = self.encode(images)
        return self.class_head(mean)

    def _class_terms(self, mean, class_ids):
        """{} without a class head; else {"class_loss", "class_acc"} per example on the posterior mean."""
        if self.class_head is None:
            return {}
        logits = self.class_head(mean)
        return {
            "class_loss": losses.class_loss(logits, class_ids),
            "class_acc": losses.class_accuracy(logits, class_ids),
        }

    def _posterior_sample(self, mean, log_variance):
        """The reparameterization trick, noise drawn per global batch then sliced per replica."""
        local_batch_size = tf.shape(mean)[0]
        num_replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        noise = tf.random.stateless_normal(
            [local_batch_size * num_replicas, self.latent_dim], self._noise_seed(POSTERIOR_STREAM)
        )
        return mean + self.noise_scale() * tf.exp(0.5 * log_variance) * replica_slice(noise, local_batch_size)

    def joint_step(self, images, voxels, class_ids=None):
        """D (gated), then one update of E and G on L_GAN + a1 KL + a2 reconstruction.

        L_GAN's shapes are those of D's pass, as in `gan_step`: scored again by
        D when it stepped, their logits in D's pass when its gate closed; E and
        G pass only the posterior batch (with synchronized BatchNorm G draws
        new prior z and passes them too).
        """
        global_batch_size = self.global_batch_size(voxels)
        d_pass, gate, g_pass = self.discriminator_step(voxels, global_batch_size)
        g_variables = self.generator.trainable_variables

        def gate_opened():
            e_gradients, g_gradients, terms, upstream = self._joint_gradients(
                images, voxels, class_ids, global_batch_size, fakes=g_pass.generated)
            return e_gradients, _added(g_gradients, g_pass.gradients(g_variables, upstream)), terms

        def gate_closed():
            e_gradients, g_gradients, terms, _ = self._joint_gradients(
                images, voxels, class_ids, global_batch_size, fakes=None)
            terms["g_loss"] = g_pass.per_example
            return e_gradients, _added(g_gradients, g_pass.gradients(g_variables)), terms

        if self.reuses_generator_pass():
            e_gradients, g_gradients, terms = tf.cond(d_pass.gate_open, gate_opened, gate_closed)
        else:
            e_gradients, g_gradients, terms, _ = self._joint_gradients(
                images, voxels, class_ids, global_batch_size, fakes=OWN_PRIOR_PASS)
        self.g_optimizer.apply(g_gradients, g_variables)
        self.e_optimizer.apply(e_gradients, self.encoder_variables())
        self.step.assign_add(1)
        return self.update_trackers(d_loss=d_pass.per_example, d_acc=d_pass.accuracy, d_updated=gate, **terms)

    def _joint_gradients(self, images, voxels, class_ids, global_batch_size, fakes):
        """(E's gradients, G's gradients, per-example terms, the gradients with respect to `fakes`) of the
        joint loss. `fakes`: shapes whose L_GAN joins the loss (their gradients are returned, for G's
        forward that made them), OWN_PRIOR_PASS (G makes them here from new prior z), or None (no
        L_GAN, no "g_loss" term; the last result None).

        G runs on prior and posterior samples as separate batches: in one mixed
        batch its BatchNorm statistics differ from those of D's update, and G
        learns to fool D only on mixed batches. The calls are chained so that
        synchronized BatchNorm all-reduces run in one order on every replica.
        E's and G's gradients come from one backward pass where that is safe
        (see `_encoder_generator_gradients`).
        """
        given = fakes is not None and fakes is not OWN_PRIOR_PASS
        with tf.GradientTape(persistent=True) as tape:
            mean, log_variance = self.encoder(self.after_discriminator_update(images), training=True)
            terms, previous = {}, mean
            if fakes is OWN_PRIOR_PASS:
                with tf.control_dependencies([mean]):
                    previous = self.generator(self.prior_latent(tf.shape(voxels)[0]), training=True)
                terms["g_loss"] = self.adversarial_loss(previous)
            elif given:
                tape.watch(fakes)
                terms["g_loss"] = self.adversarial_loss(fakes)
            with tf.control_dependencies([previous]):
                reconstruction = self.generator(self._posterior_sample(mean, log_variance), training=True)
            terms["kl_loss"] = losses.kl_divergence(mean, log_variance)
            terms["recon_loss"] = losses.reconstruction_loss(reconstruction, voxels)
            terms.update(self._class_terms(mean, class_ids))
            total = self.kl_weight * terms["kl_loss"] + self.reconstruction_weight * terms["recon_loss"]
            total += terms.get("g_loss", 0.0) + self.class_weight * terms.get("class_loss", 0.0)
            loss = losses.global_mean(total, global_batch_size)
            e_scaled_loss = self.e_optimizer.scale_loss(loss)
            g_scaled_loss = self.g_optimizer.scale_loss(loss)
        e_gradients, g_gradients = self._encoder_generator_gradients(tape, e_scaled_loss, g_scaled_loss)
        upstream = tape.gradient(g_scaled_loss, fakes) if given else None
        del tape
        return e_gradients, g_gradients, terms, upstream

    def _encoder_generator_gradients(self, tape, e_scaled_loss, g_scaled_loss):
        """(E's gradients, G's gradients) of the joint loss, from a persistent tape.

        One backward pass serves both networks (both scaled losses are then
        the loss itself), unless an optimizer scales the loss (float16 loss
        scaling: E's and G's scales differ) or BatchNorm is synchronized: then
        E's gradients are taken first and G's after them, so that the
        all-reduces run in one order on every replica. That second pass
        repeats the backward through G's posterior branch (about 5% of op
        time at 32^3 float32, profiled).
        """
        e_variables = self.encoder_variables()
        g_variables = self.generator.trainable_variables
        scales_loss = any(
            isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
            for optimizer in (self.e_optimizer, self.g_optimizer)
        )
        if not (scales_loss or self.synchronized_batch_norm):
            gradients = tape.gradient(e_scaled_loss, e_variables + g_variables)
            return gradients[: len(e_variables)], gradients[len(e_variables) :]
        e_gradients = tape.gradient(e_scaled_loss, e_variables)
        with tf.control_dependencies(e_gradients):
            g_gradients = tape.gradient(g_scaled_loss, g_variables)
        return e_gradients, g_gradients

    def encoder_step(self, images, voxels, class_ids=None):
        """E alone on a1 KL + a2 reconstruction (+ the class loss) through the frozen generator."""
        global_batch_size = self.global_batch_size(voxels)
        with tf.GradientTape() as tape:
            mean, log_variance = self.encoder(images, training=True)
            reconstruction = self.generator(self._posterior_sample(mean, log_variance), training=False)
            kl = losses.kl_divergence(mean, log_variance)
            recon = losses.reconstruction_loss(reconstruction, voxels)
            classes = self._class_terms(mean, class_ids)
            total = self.kl_weight * kl + self.reconstruction_weight * recon
            total += self.class_weight * classes.get("class_loss", 0.0)
            scaled_loss = self.e_optimizer.scale_loss(losses.global_mean(total, global_batch_size))
        variables = self.encoder_variables()
        gradients = tape.gradient(scaled_loss, variables)
        self.e_optimizer.apply(gradients, variables)
        self.step.assign_add(1)
        return self.update_trackers(kl_loss=kl, recon_loss=recon, **classes)

    def train_step(self, data):
        """`data` is (images, voxels), or (images, voxels, class_ids) for a model with a class head."""
        if self.class_head is not None and len(data) != 3:
            raise ValueError("this model has a class head: its batches need class ids (make_dataset(class_ids=True))")
        images, voxels, *class_ids = data
        class_ids = class_ids[0] if class_ids else None
        if self.stage == "gan":
            return self.gan_step(voxels)
        if self.stage == "encoder":
            return self.encoder_step(images, voxels, class_ids)
        return self.joint_step(images, voxels, class_ids)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            kl_weight=self.kl_weight,
            noise_warmup_steps=self.noise_warmup_steps,
            reconstruction_weight=self.reconstruction_weight,
            num_classes=self.num_classes,
            class_weight=self.class_weight,
            encoder=keras.saving.serialize_keras_object(self.encoder),
        )
        return config
