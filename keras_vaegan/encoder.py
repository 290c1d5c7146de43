"""3D-VAE-GAN image encoder: RGB image -> mean and log-variance of z."""

import keras

from keras_vaegan.layers import SERIALIZATION_PACKAGE, BlockStack, ConvUnit, build_sequentially


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class ImageEncoder(BlockStack, keras.Model):
    """The paper's five 2D convolutions: kernels 11,5,5,5,8; channels 64,128,256,512,2*latent.

    Strides 4,2,2,2,1, BatchNorm + ReLU on the first four. At 256x256 the last
    kernel (8) covers the whole 8x8 map; for another `image_size` (a multiple
    of 32) it is image_size // 32 so the output is always 1x1. Returns
    (mean, log_variance), each (batch, latent_dim) float32.
    """

    def __init__(self, image_size=256, latent_dim=200, synchronized_batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.image_size = image_size
        self.latent_dim = latent_dim
        self.synchronized_batch_norm = synchronized_batch_norm
        specs = [(64, 11, 4), (128, 5, 2), (256, 5, 2), (512, 5, 2)]
        blocks = [
            ConvUnit(
                filters,
                kernel,
                stride,
                rank=2,
                synchronized_batch_norm=synchronized_batch_norm,
                name=f"block{i + 1}",
            )
            for i, (filters, kernel, stride) in enumerate(specs)
        ]
        blocks.append(
            ConvUnit(
                2 * latent_dim,
                image_size // 32,
                1,
                padding="valid",
                rank=2,
                normalize=False,
                activation=None,
                name="block5",
            )
        )
        self.attach_blocks(blocks)
        self.flatten = keras.layers.Flatten(name="flatten")
        self.to_float32 = keras.layers.Activation("linear", dtype="float32", name="moments")

    def build(self, input_shape):
        shape = build_sequentially(self.blocks, input_shape)
        self.flatten.build(shape)
        self.to_float32.build(self.flatten.compute_output_shape(shape))
        self.built = True

    def call(self, images, training=None):
        x = images
        for block in self.blocks:
            x = block(x, training=training)
        moments = self.to_float32(self.flatten(x))
        return moments[:, : self.latent_dim], moments[:, self.latent_dim :]

    def get_config(self):
        config = super().get_config()
        config.update(
            image_size=self.image_size,
            latent_dim=self.latent_dim,
            synchronized_batch_norm=self.synchronized_batch_norm,
        )
        return config
