"""3D-GAN generator: z -> occupancy probabilities."""

import keras

from keras_vaegan.layers import SERIALIZATION_PACKAGE, BlockStack, ConvUnit, build_sequentially


@keras.saving.register_keras_serializable(package=SERIALIZATION_PACKAGE)
class Generator(BlockStack, keras.Model):
    """Five 3D transposed convolutions, kernel 4, BatchNorm + ReLU between, sigmoid out.

    64^3: widths 512-256-128-64-1, 1^3 -> 4^3 -> 8 -> 16 -> 32 -> 64 (the paper).
    32^3: widths 256-128-64-32-1, 1^3 -> 2^3 -> 4 -> 8 -> 16 -> 32 (3DGAN-Pytorch).
    Output: (batch, R, R, R, 1) float32 probabilities, also under mixed precision.
    """

    def __init__(self, resolution=64, latent_dim=200, synchronized_batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.resolution = resolution
        self.latent_dim = latent_dim
        self.synchronized_batch_norm = synchronized_batch_norm
        widths = [resolution * 8 // 2**i for i in range(4)] + [1]
        first_padding = "valid" if resolution == 64 else "same"
        self.reshape = keras.layers.Reshape((1, 1, 1, latent_dim), name="to_volume")
        blocks = [
            ConvUnit(
                filters,
                4,
                2,
                padding=first_padding if i == 0 else "same",
                transpose=True,
                normalize=i < 4,
                activation="relu" if i < 4 else None,
                synchronized_batch_norm=synchronized_batch_norm,
                name=f"block{i + 1}",
            )
            for i, filters in enumerate(widths)
        ]
        self.attach_blocks(blocks)
        self.occupancy = keras.layers.Activation("sigmoid", dtype="float32", name="occupancy")

    def build(self, input_shape):
        self.reshape.build(input_shape)
        shape = build_sequentially(self.blocks, (input_shape[0], 1, 1, 1, self.latent_dim))
        self.occupancy.build(shape)
        self.built = True

    def call(self, z, training=None):
        x = self.reshape(z)
        for block in self.blocks:
            x = block(x, training=training)
        return self.occupancy(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            resolution=self.resolution,
            latent_dim=self.latent_dim,
            synchronized_batch_norm=self.synchronized_batch_norm,
        )
        return config
