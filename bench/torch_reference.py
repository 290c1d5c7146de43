"""PyTorch baseline for bench/train_step.py: the same 3D-GAN / 3D-VAE-GAN and the same step.

Layout NCDHW (PyTorch's native one). The architecture mirrors keras_vaegan:

- G: z (B, latent) -> (B, latent, 1, 1, 1) -> five ConvTranspose3d(k4, s2),
  widths 256-128-64-32-1 at 32^3 (all padding 1; the first maps 1^3 -> 2^3)
  or 512-256-128-64-1 at 64^3 (first padding 0: 1^3 -> 4^3), BatchNorm3d +
  ReLU between, no bias before a BatchNorm, sigmoid out in float32.
- D: four Conv3d(k4, s2, p1) widths 32-64-128-256 (64^3: 64-128-256-512) +
  BatchNorm3d + LeakyReLU(0.2), then Conv3d(k4, s2) to one logit (padding 1 at
  32^3, 0 at 64^3), float32 logits.
- E: Conv2d kernels 11,5,5,5, strides 4,2,2,2, channels 64,128,256,512 +
  BatchNorm2d + ReLU, then Conv2d(kernel image_size // 32) to 2 * latent.
  `padding="symmetric"` (the benchmark) pads k // 2 on every side, which gives
  TensorFlow's 'same' output shapes; `padding="tf_same"` pads like TensorFlow
  (more on the bottom/right) and is used only to check numerics against Keras.

The step (`Trainer.step`) matches keras_vaegan's GAN3D.gan_step / VAEGAN3D.joint_step:
D step = G forward on prior z without gradients, D forward on the real batch
then on the fake batch (`d_batches="separate"`; `"concat"`: one forward on
cat(real, fake)), per-example BCE-with-logits summed over real and fake then
averaged, accuracy, then, only while accuracy <= threshold (or when the
caller's `d_steps` says so), `d_loss.backward()` and `optimizer.step()`, as
the PyTorch port rimchang/3DGAN-Pytorch does; then the G step on
fresh z (non-saturating loss) or, for the VAE-GAN, E forward, G forward on
the prior z and on the reparameterized posterior z (`g_batches="separate"`;
`"concat"`: one G forward on their concatenation), adversarial loss of the
prior samples + kl_weight * KL + reconstruction_weight * summed squared error
of the posterior ones, E and G updated by one backward. keras_vaegan's G step
takes D's prior z and the G forward of D's step instead of new z; the
verification hands the reference D's z for its G step, so the losses agree,
and the timed steps draw new z as the port does. keras_vaegan moved
between these layouts while this benchmark was written: bench/train_step.py
--verify finds the layout that reproduces the Keras losses and times that one.
D's parameters do not require gradients during the
G/E step (the usual PyTorch idiom; Keras' tape also never computes them).
Adam(beta1=0.5, eps=1e-7 as Keras) everywhere. Under bfloat16 the forwards run
in torch.autocast("cpu", torch.bfloat16); the last activations and the losses
are float32.
"""

import contextlib

import torch
import torch.nn.functional as F
from torch import nn


def _init(module):
    if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def _bn(rank, channels):
    # Keras momentum 0.9 == PyTorch momentum 0.1; same epsilon as keras_vaegan.layers.batch_norm.
    cls = nn.BatchNorm2d if rank == 2 else nn.BatchNorm3d
    return cls(channels, eps=1e-5, momentum=0.1)


def widths(resolution):
    base = resolution * 8
    g = (base, base // 2, base // 4, base // 8, 1)
    return g, tuple(reversed(g[:-1])) + (1,)


class Generator(nn.Module):
    def __init__(self, resolution=32, latent_dim=200):
        super().__init__()
        self.latent_dim = latent_dim
        g_widths, _ = widths(resolution)
        layers = []
        in_channels = latent_dim
        for i, out_channels in enumerate(g_widths):
            last = i == len(g_widths) - 1
            padding = 0 if (i == 0 and resolution == 64) else 1
            layers.append(nn.ConvTranspose3d(in_channels, out_channels, 4, 2, padding, bias=last))
            if not last:
                layers += [_bn(3, out_channels), nn.ReLU(inplace=True)]
            in_channels = out_channels
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, z):
        x = self.net(z.view(z.shape[0], self.latent_dim, 1, 1, 1))
        return torch.sigmoid(x.float())


class Discriminator(nn.Module):
    def __init__(self, resolution=32):
        super().__init__()
        _, d_widths = widths(resolution)
        layers = []
        in_channels = 1
        for i, out_channels in enumerate(d_widths):
            last = i == len(d_widths) - 1
            padding = 0 if (last and resolution == 64) else 1
            layers.append(nn.Conv3d(in_channels, out_channels, 4, 2, padding, bias=last))
            if not last:
                layers += [_bn(3, out_channels), nn.LeakyReLU(0.2, inplace=True)]
            in_channels = out_channels
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, voxels):
        return self.net(voxels).float().flatten(1)


class _TFSamePad(nn.Module):
    """TensorFlow 'same' padding for a stride-s, kernel-k 2D convolution (extra row/column at the end)."""

    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x):
        pads = []
        for size in (x.shape[-1], x.shape[-2]):
            out = -(-size // self.stride)
            total = max((out - 1) * self.stride + self.kernel - size, 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)


class Encoder(nn.Module):
    SPECS = ((64, 11, 4), (128, 5, 2), (256, 5, 2), (512, 5, 2))

    def __init__(self, image_size=64, latent_dim=200, padding="symmetric"):
        super().__init__()
        self.latent_dim = latent_dim
        layers = []
        in_channels = 3
        for out_channels, kernel, stride in self.SPECS:
            if padding == "tf_same":
                layers += [_TFSamePad(kernel, stride), nn.Conv2d(in_channels, out_channels, kernel, stride, bias=False)]
            else:
                layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2, bias=False))
            layers += [_bn(2, out_channels), nn.ReLU(inplace=True)]
            in_channels = out_channels
        layers.append(nn.Conv2d(in_channels, 2 * latent_dim, image_size // 32, 1, 0, bias=True))
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, images):
        moments = self.net(images).float().flatten(1)
        return moments[:, : self.latent_dim], moments[:, self.latent_dim :]


def _bce(logits, label):
    return F.binary_cross_entropy_with_logits(logits.float().flatten(), torch.full_like(logits.float().flatten(), label),
                                              reduction="none")


def discriminator_loss(real_logits, fake_logits):
    return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def generator_loss(fake_logits):
    return _bce(fake_logits, 1.0)


def discriminator_accuracy(real_logits, fake_logits):
    return 0.5 * ((real_logits.flatten() > 0).float() + (fake_logits.flatten() <= 0).float())


def kl_divergence(mean, log_variance):
    return -0.5 * torch.sum(1.0 + log_variance - mean.square() - log_variance.exp(), dim=-1)


def reconstruction_loss(reconstruction, voxels):
    return (reconstruction.float() - voxels.float()).square().flatten(1).sum(-1)


class Trainer:
    """Networks, optimizers and the train step of the Keras model, in PyTorch."""

    def __init__(self, model_type="gan", resolution=32, image_size=64, latent_dim=200, precision="float32",
                 d_accuracy_threshold=0.8, generator_learning_rate=0.0025, discriminator_learning_rate=1e-5,
                 encoder_learning_rate=1e-4, beta1=0.5, kl_weight=5.0, reconstruction_weight=1e-4,
                 encoder_padding="symmetric", d_batches="separate", g_batches="separate", latent_prior="normal",
                 seed=0):
        torch.manual_seed(seed)
        self.latent_prior = latent_prior
        self.d_batches, self.g_batches = d_batches, g_batches
        self.model_type = model_type
        self.latent_dim = latent_dim
        self.threshold = d_accuracy_threshold
        self.kl_weight = kl_weight
        self.reconstruction_weight = reconstruction_weight
        self.precision = precision
        self.G = Generator(resolution, latent_dim).train()
        self.D = Discriminator(resolution).train()
        adam = dict(betas=(beta1, 0.999), eps=1e-7)
        self.g_opt = torch.optim.Adam(self.G.parameters(), lr=generator_learning_rate, **adam)
        self.d_opt = torch.optim.Adam(self.D.parameters(), lr=discriminator_learning_rate, **adam)
        if model_type == "vaegan":
            self.E = Encoder(image_size, latent_dim, encoder_padding).train()
            self.e_opt = torch.optim.Adam(self.E.parameters(), lr=encoder_learning_rate, **adam)

    def autocast(self):
        if self.precision == "mixed_bfloat16":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def prior(self, batch_size):
        if self.latent_prior == "uniform":  # [0, 1), as keras_vaegan's uniform prior
            return torch.rand(batch_size, self.latent_dim)
        return torch.randn(batch_size, self.latent_dim)

    def discriminator_step(self, real, z=None, d_steps=None):
        batch_size = real.shape[0]
        z = self.prior(batch_size) if z is None else z
        with torch.no_grad(), self.autocast():
            fake = self.G(z)
        with self.autocast():
            if self.d_batches == "concat":
                real_logits, fake_logits = self.D(torch.cat([real, fake.to(real.dtype)], 0)).float().chunk(2)
            else:
                real_logits, fake_logits = self.D(real).float(), self.D(fake).float()
        d_loss = discriminator_loss(real_logits, fake_logits).mean()
        accuracy = discriminator_accuracy(real_logits, fake_logits).mean()
        updated = bool(accuracy.item() <= self.threshold) if d_steps is None else d_steps
        if updated:
            self.d_opt.zero_grad(set_to_none=True)
            d_loss.backward()
            self.d_opt.step()
        return d_loss.detach(), accuracy.detach(), updated

    def step(self, voxels, images=None, z_d=None, z_g=None, noise=None, d_steps=None):
        """One train step; z_d/z_g/noise may be given (to reproduce Keras' draws), else drawn here.
        `d_steps` (bool) decides whether D steps instead of its accuracy gate."""
        d_loss, accuracy, updated = self.discriminator_step(voxels, z_d, d_steps)
        batch_size = voxels.shape[0]
        z_g = self.prior(batch_size) if z_g is None else z_g
        self.D.requires_grad_(False)
        try:
            if self.model_type == "gan":
                with self.autocast():
                    fake_logits = self.D(self.G(z_g))
                g_per_example = generator_loss(fake_logits)
                loss = g_per_example.mean()
                self.g_opt.zero_grad(set_to_none=True)
                loss.backward()
                self.g_opt.step()
                return dict(d_loss=d_loss, g_loss=loss.detach(), d_acc=accuracy, d_updated=updated)
            with self.autocast():
                mean, log_variance = self.E(images)
            noise = torch.randn_like(mean) if noise is None else noise
            posterior = mean + torch.exp(0.5 * log_variance) * noise
            with self.autocast():
                if self.g_batches == "concat":
                    fake, reconstruction = self.G(torch.cat([z_g, posterior], 0)).chunk(2)
                else:
                    fake, reconstruction = self.G(z_g), self.G(posterior)
                fake_logits = self.D(fake)
            g_per_example = generator_loss(fake_logits)
            kl = kl_divergence(mean, log_variance)
            recon = reconstruction_loss(reconstruction, voxels)
            loss = (g_per_example + self.kl_weight * kl + self.reconstruction_weight * recon).mean()
            self.g_opt.zero_grad(set_to_none=True)
            self.e_opt.zero_grad(set_to_none=True)
            loss.backward()
            self.g_opt.step()
            self.e_opt.step()
            return dict(d_loss=d_loss, g_loss=g_per_example.mean().detach(), d_acc=accuracy, d_updated=updated,
                        kl_loss=kl.mean().detach(), recon_loss=recon.mean().detach())
        finally:
            self.D.requires_grad_(True)


# ---------------------------------------------------------------------------------------------
# Weight import from keras_vaegan (for the numerical check in bench/train_step.py --verify).

def _copy_conv(torch_conv, keras_conv, transpose):
    kernel = keras_conv.kernel.numpy()
    # Keras Conv3D (k,k,k,in,out) -> (out,in,k,k,k); Conv3DTranspose (k,k,k,out,in) -> (in,out,k,k,k);
    # Conv2D (k,k,in,out) -> (out,in,k,k).
    rank = kernel.ndim - 2
    perm = (rank + 1, rank) + tuple(range(rank))
    torch_conv.weight.data.copy_(torch.from_numpy(kernel.transpose(perm).copy()))
    if torch_conv.bias is not None:
        torch_conv.bias.data.copy_(torch.from_numpy(keras_conv.bias.numpy()))


def _copy_bn(torch_bn, keras_bn):
    torch_bn.weight.data.copy_(torch.from_numpy(keras_bn.gamma.numpy()))
    torch_bn.bias.data.copy_(torch.from_numpy(keras_bn.beta.numpy()))
    torch_bn.running_mean.data.copy_(torch.from_numpy(keras_bn.moving_mean.numpy()))
    torch_bn.running_var.data.copy_(torch.from_numpy(keras_bn.moving_variance.numpy()))


def copy_from_keras(torch_module, keras_model, transpose=False):
    """Copies the ConvUnit blocks of a keras_vaegan Generator/Discriminator/ImageEncoder into `torch_module`."""
    convs = [m for m in torch_module.net if isinstance(m, (nn.Conv2d, nn.Conv3d, nn.ConvTranspose3d))]
    norms = [m for m in torch_module.net if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d))]
    if len(convs) != len(keras_model.blocks):
        raise ValueError(f"{len(convs)} convolutions here, {len(keras_model.blocks)} blocks in Keras")
    norm_iter = iter(norms)
    for conv, block in zip(convs, keras_model.blocks):
        _copy_conv(conv, block.conv, transpose)
        if block.norm is not None:
            _copy_bn(next(norm_iter), block.norm)
