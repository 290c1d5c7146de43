"""Brings existing 3D-GAN weights in, or takes ours out:

  python -m keras_vaegan.convert --from torch7 --generator chair_G_cpu.t7 --out chair.keras
  python -m keras_vaegan.convert --from pytorch --generator G.pth --discriminator D.pth --out model.keras
  python -m keras_vaegan.convert --to pytorch --model model.keras --out pytorch_weights/

Prints every source tensor with the weight of ours it went to. Bad input
(another architecture or resolution, a truncated file, a pickle that would run
code, a discriminator given as the generator) is one `error:` line, exit 2.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags  # noqa: E402

from vaegan_utils.cli import console_entry, fail, parse_flags  # noqa: E402

FLAGS = flags.FlagValues()
flags.DEFINE_enum("from", None, ["torch7", "pytorch"], "Source of the weights: the authors' Torch7 .t7 files "
                  "or 3DGAN-Pytorch state dicts (.pth).", flag_values=FLAGS)
flags.DEFINE_enum("to", "keras", ["keras", "pytorch"], "keras: write a .keras model; pytorch: write G.pth and "
                  "D.pth from --model.", flag_values=FLAGS)
flags.DEFINE_string("generator", None, "The generator file (.t7 or .pth).", flag_values=FLAGS)
flags.DEFINE_string("discriminator", None, "The discriminator file (optional; without it ours starts from "
                    "random weights).", flag_values=FLAGS)
flags.DEFINE_string("model", None, "--to pytorch: the .keras model to write out.", flag_values=FLAGS)
flags.DEFINE_string("out", None, "--to keras: the .keras file; --to pytorch: a folder for G.pth and D.pth.",
                    flag_values=FLAGS)
flags.DEFINE_boolean("zero_biases", True, "Torch7: zero every convolution bias, as the authors' sampler does "
                     "(--nozero_biases folds them in instead).", flag_values=FLAGS)
flags.DEFINE_enum("latent_prior", None, ["uniform", "normal"], "Prior of the model's `sample` signature; "
                  "default uniform [0, 1) for torch7 (the authors' sampler), normal for pytorch.",
                  flag_values=FLAGS)


def print_rows(title, rows):
    """The table of converted tensors: source name, shape, our weight."""
    width = max(len(name) for name, _, _ in rows)
    print(f"{title}:")
    for name, shape, target in rows:
        print(f"  {name:<{width}}  {str(tuple(shape)):<22} -> {target}")


def to_keras():
    from keras_vaegan.weights.to_keras import convert_to_keras

    out = FLAGS.out
    if not out.endswith(".keras"):
        fail(f"--out: {out} must end in .keras")
    if os.path.isdir(out):
        fail(f"--out: {out} is a folder")
    generator, discriminator = convert_to_keras(
        FLAGS["from"].value, FLAGS.generator, out, FLAGS.discriminator, FLAGS.zero_biases, FLAGS.latent_prior
    )
    print_rows(f"generator {generator.path} ({generator.resolution}^3, latent {generator.latent_dim})",
               generator.rows)
    if discriminator:
        print_rows(f"discriminator {discriminator.path}", discriminator.rows)
    else:
        print("discriminator: not given; the model's discriminator keeps its random initial weights")
    print(f"wrote {out}")


def to_pytorch():
    from keras_vaegan.weights.to_pytorch import convert_to_pytorch

    for kind, (path, state, with_bias) in convert_to_pytorch(FLAGS.model, FLAGS.out).items():
        rows = [(key, value.shape, f"{kind} (ours)") for key, value in state.items()]
        print_rows(f"{kind} -> {path}" + (" (with conv biases: build the port with --bias True)"
                                          if with_bias else ""), rows)


def main(argv):
    parse_flags(FLAGS, argv, __doc__, required=("out",))
    if FLAGS.to == "keras":
        for name in ("from", "generator"):
            if not FLAGS[name].value:
                fail(f"--{name} is required to write a .keras model")
    elif not FLAGS.model:
        fail("--model is required with --to pytorch")
    from keras_vaegan.weights import ConversionError

    try:
        to_keras() if FLAGS.to == "keras" else to_pytorch()
    except ConversionError as error:
        fail(str(error))
    except OSError as error:
        fail(f"{error.filename or FLAGS.out}: {error.strerror or error}")
    return 0


run = console_entry(main)

if __name__ == "__main__":
    run()
