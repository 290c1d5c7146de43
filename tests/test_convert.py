"""python -m keras_vaegan.convert: Torch7 and 3DGAN-Pytorch weights in with exact output parity, and back out.

Fixtures hold the sources' architectures with random weights and BatchNorm
statistics: `.t7` files written in Torch7's binary format (tests/torch7_writer.py)
and state dicts of the port's `_G`/`_D` saved by torch. The reference forward is
PyTorch's (ConvTranspose3d has the semantics of VolumetricFullConvolution).
"""

import pickle
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from keras_vaegan import convert
from keras_vaegan.weights import ConversionError
from keras_vaegan.weights.pytorch_state import load_state_dict
from keras_vaegan.weights.to_keras import convert_to_keras
from keras_vaegan.weights.to_pytorch import convert_to_pytorch
from torch7_writer import CudaArray, TorchClass, write_t7

TOLERANCE = 1e-5
LATENT = 200


@pytest.fixture(autouse=True)
def fresh_flags():
    """Every test parses the converter's flags anew (absl keeps values between parses)."""
    yield
    convert.FLAGS.unparse_flags()


# ---------------------------------------------------------------- the authors' Torch7 generator


def generator_layers(resolution, latent=LATENT, seed=0):
    """[(weight (in, out, 4, 4, 4), bias, stride, padding, bn or None)] of a random 3D-GAN generator."""
    rng = np.random.default_rng(seed)
    widths = [latent] + [resolution * 8 // 2**i for i in range(4)] + [1]
    layers = []
    for i in range(5):
        weight = rng.normal(0, 0.05, (widths[i], widths[i + 1], 4, 4, 4)).astype("float32")
        bias = rng.normal(0, 0.5, widths[i + 1]).astype("float32")
        first_valid = i == 0 and resolution == 64
        bn = None
        if i < 4:
            n = widths[i + 1]
            bn = dict(
                weight=(1 + 0.2 * rng.normal(size=n)).astype("float32"),
                bias=(0.2 * rng.normal(size=n)).astype("float32"),
                running_mean=(0.3 * rng.normal(size=n)).astype("float32"),
                running_var=rng.uniform(0.2, 2.0, n).astype("float32"),
                eps=1e-5,
            )
        layers.append((weight, bias, 1 if first_valid else 2, 0 if first_valid else 1, bn))
    return layers


def torch7_generator(layers, cudnn=False, eps=1e-5):
    """The authors' nn.Sequential (cudnn.* modules and CudaTensors for a GPU file)."""
    prefix = "cudnn" if cudnn else "nn"
    tensor = CudaArray if cudnn else (lambda a: a)
    empty = tensor(np.zeros(0, "float32"))
    modules = []
    for weight, bias, stride, pad, bn in layers:
        fields = dict(nInputPlane=weight.shape[0], nOutputPlane=weight.shape[1], train=False,
                      weight=tensor(weight), bias=tensor(bias), gradWeight=tensor(np.zeros_like(weight)),
                      gradBias=tensor(np.zeros_like(bias)), output=empty, gradInput=empty, finput=empty)
        for axis in "TWH":
            fields.update({f"k{axis}": 4, f"d{axis}": stride, f"pad{axis}": pad, f"adj{axis}": 0})
        modules.append(TorchClass(f"{prefix}.VolumetricFullConvolution", fields))
        if bn is None:
            modules.append(TorchClass(f"{prefix}.Sigmoid", dict(output=empty, gradInput=empty, train=False)))
            continue
        stats = {k: tensor(v) for k, v in bn.items() if k != "eps"}
        modules.append(TorchClass(f"{prefix}.VolumetricBatchNormalization", dict(
            stats, eps=eps, momentum=0.1, affine=True, nDim=5, train=False, output=empty,
            save_mean=empty, save_std=empty), version=2))
        modules.append(TorchClass(f"{prefix}.ReLU", dict(inplace=True, threshold=0, val=0, output=empty)))
    return TorchClass("nn.Sequential", dict(modules=modules, output=empty, gradInput=empty, train=False))


def reference_generator(layers, z, zero_biases, eps=1e-5):
    """The source network's forward in PyTorch, inference mode: (batch, 1, R, R, R)."""
    x = torch.from_numpy(z).reshape(len(z), -1, 1, 1, 1)
    for weight, bias, stride, pad, bn in layers:
        b = None if zero_biases else torch.from_numpy(bias)
        x = F.conv_transpose3d(x, torch.from_numpy(weight), b, stride=stride, padding=pad)
        if bn is None:
            return torch.sigmoid(x).numpy()
        x = F.batch_norm(x, *(torch.from_numpy(bn[k]) for k in ("running_mean", "running_var", "weight", "bias")),
                         training=False, eps=eps)
        x = F.relu(x)


def ours(path, z):
    model = keras.saving.load_model(path, compile=False)
    return model, model.generator(z, training=False).numpy()


def channels_first(grid):
    return grid.transpose(0, 4, 1, 2, 3)


@pytest.mark.parametrize("resolution,cudnn", [(64, False), (32, True)])
def test_torch7_generator_parity_with_the_authors_sampler(tmp_path, capsys, resolution, cudnn):
    layers = generator_layers(resolution)
    path = str(tmp_path / "chair_G.t7")
    write_t7(path, torch7_generator(layers, cudnn=cudnn))
    out = str(tmp_path / "chair.keras")
    assert convert.main(["convert", "--from=torch7", f"--generator={path}", f"--out={out}"]) == 0
    printed = capsys.readouterr().out
    assert "modules[1].weight" in printed and "generator.block1.conv.kernel" in printed
    assert "zeroed" in printed and "random initial weights" in printed
    z = np.random.default_rng(1).random((2, LATENT)).astype("float32")
    model, occupancy = ours(out, z)
    assert model.latent_prior == "uniform"
    expected = reference_generator(layers, z, zero_biases=True)
    assert np.abs(channels_first(occupancy) - expected).max() <= TOLERANCE
    assert expected.std() > 0.05  # a real comparison, not of constant grids


def test_torch7_biases_and_epsilon_fold_exactly(tmp_path):
    layers = generator_layers(32, seed=3)
    path = str(tmp_path / "g.t7")
    write_t7(path, torch7_generator(layers, eps=1e-3))
    out = str(tmp_path / "g.keras")
    convert_to_keras("torch7", path, out, zero_biases=False)
    z = np.random.default_rng(2).random((2, LATENT)).astype("float32")
    expected = reference_generator(layers, z, zero_biases=False, eps=1e-3)
    assert np.abs(channels_first(ours(out, z)[1]) - expected).max() <= TOLERANCE


def test_torch7_old_running_std_is_read_as_variance(tmp_path):
    layers = generator_layers(32, seed=4)
    network = torch7_generator(layers)
    for module in network.fields["modules"]:
        if module.name.endswith("BatchNormalization"):
            var = module.fields.pop("running_var")
            module.fields["running_std"] = (1 / np.sqrt(var + 1e-5)).astype("float32")
            module.version = 1
    path = str(tmp_path / "g.t7")
    write_t7(path, network)
    out = str(tmp_path / "g.keras")
    convert_to_keras("torch7", path, out)
    z = np.random.default_rng(2).random((2, LATENT)).astype("float32")
    expected = reference_generator(layers, z, zero_biases=True)
    assert np.abs(channels_first(ours(out, z)[1]) - expected).max() <= TOLERANCE


# ---------------------------------------------------------------- rimchang/3DGAN-Pytorch


def port_networks(cube_len, bias=False, seed=0):
    """The port's `_G` and `_D` (3D_GAN/model.py) with random weights and BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    first = (1, 1, 1) if cube_len == 32 else (0, 0, 0)
    nn = torch.nn

    def stack(convs, last_act, act):
        layers = {}
        for i, conv in enumerate(convs, start=1):
            parts = [conv] + ([nn.BatchNorm3d(conv.out_channels), act()] if i < 5 else [last_act()])
            layers[f"layer{i}"] = nn.Sequential(*parts)
        return _Named(layers).eval()

    c = cube_len
    g_widths = [LATENT, c * 8, c * 4, c * 2, c, 1]
    generator = stack([nn.ConvTranspose3d(g_widths[i], g_widths[i + 1], 4, 2, bias=bias,
                                          padding=first if i == 0 else (1, 1, 1)) for i in range(5)],
                      nn.Sigmoid, nn.ReLU)
    d_widths = [1, c, c * 2, c * 4, c * 8, 1]
    discriminator = stack([nn.Conv3d(d_widths[i], d_widths[i + 1], 4, 2, bias=bias,
                                     padding=first if i == 4 else (1, 1, 1)) for i in range(5)],
                          nn.Sigmoid, lambda: nn.LeakyReLU(0.2))
    for network in (generator, discriminator):
        for module in network.modules():
            if isinstance(module, nn.BatchNorm3d):
                n = module.num_features
                module.weight.data = 1 + 0.2 * torch.randn(n)
                module.bias.data = 0.2 * torch.randn(n)
                module.running_mean = 0.3 * torch.randn(n)
                module.running_var = 0.2 + 1.8 * torch.rand(n)
            elif isinstance(module, (nn.Conv3d, nn.ConvTranspose3d)):
                module.weight.data.normal_(0, 0.05)
                if module.bias is not None:
                    module.bias.data.normal_(0, 0.5)
    return generator, discriminator


class _Named(torch.nn.Module):
    """Modules layer1..layer5 applied in order, as the port's forward does."""

    def __init__(self, layers):
        super().__init__()
        for name, layer in layers.items():
            self.add_module(name, layer)

    def forward(self, x):
        for i in range(1, 6):
            x = getattr(self, f"layer{i}")(x)
        return x


def save_port(folder, cube_len, bias=False):
    generator, discriminator = port_networks(cube_len, bias)
    paths = str(folder / "G.pth"), str(folder / "D.pth")
    torch.save(generator.state_dict(), paths[0])
    torch.save(discriminator.state_dict(), paths[1])
    return generator, discriminator, paths


def assert_port_parity(path, generator, discriminator, cube_len, seed=0):
    model = keras.saving.load_model(path, compile=False)
    rng = np.random.default_rng(seed)
    z = (0.33 * rng.standard_normal((2, LATENT))).astype("float32")
    with torch.no_grad():
        expected = generator(torch.from_numpy(z).reshape(2, LATENT, 1, 1, 1)).numpy()
    occupancy = model.generator(z, training=False).numpy()
    assert np.abs(channels_first(occupancy) - expected).max() <= TOLERANCE
    assert expected.std() > 0.05
    voxels = (rng.random((2, cube_len, cube_len, cube_len)) < 0.3).astype("float32")
    with torch.no_grad():
        probability = discriminator(torch.from_numpy(voxels)[:, None]).reshape(2, 1).numpy()
    logits = model.discriminator(voxels[..., None], training=False).numpy()
    assert np.abs(1 / (1 + np.exp(-logits)) - probability).max() <= TOLERANCE
    return model


@pytest.mark.parametrize("cube_len", [32, pytest.param(64, marks=pytest.mark.large)])
def test_pytorch_parity(tmp_path, capsys, cube_len):
    generator, discriminator, (g_path, d_path) = save_port(tmp_path, cube_len)
    out = str(tmp_path / "port.keras")
    argv = ["convert", "--from=pytorch", f"--generator={g_path}", f"--discriminator={d_path}", f"--out={out}"]
    assert convert.main(argv) == 0
    printed = capsys.readouterr().out
    for key in ("layer1.0.weight", "layer4.1.running_var", "layer5.0.weight", "num_batches_tracked"):
        assert key in printed
    model = assert_port_parity(out, generator, discriminator, cube_len)
    assert model.latent_prior == "normal"


def test_pytorch_biases_and_the_restricted_unpickler(tmp_path):
    generator, discriminator, (g_path, d_path) = save_port(tmp_path, 32, bias=True)
    legacy = str(tmp_path / "G_1000.pkl")  # the port's own checkpoints predate the zip format
    torch.save(generator.state_dict(), legacy, _use_new_zipfile_serialization=False)
    for path in (g_path, legacy):
        with_torch, without = load_state_dict(path, use_torch=True), load_state_dict(path, use_torch=False)
        assert list(with_torch) == list(without)
        assert all(np.array_equal(with_torch[k], without[k]) for k in with_torch)
    out = str(tmp_path / "port.keras")
    convert_to_keras("pytorch", g_path, out, d_path)
    assert_port_parity(out, generator, discriminator, 32)


def test_to_pytorch_round_trip(tmp_path, capsys):
    generator, discriminator, (g_path, d_path) = save_port(tmp_path, 32, bias=True)
    model_path = str(tmp_path / "port.keras")
    convert_to_keras("pytorch", g_path, model_path, d_path)
    out = tmp_path / "back"
    assert convert.main(["convert", "--to=pytorch", f"--model={model_path}", f"--out={out}"]) == 0
    assert "--bias True" in capsys.readouterr().out  # the last layers' biases are not zero
    generator_back, discriminator_back = port_networks(32, bias=True, seed=9)
    generator_back.load_state_dict(torch.load(out / "G.pth"))
    discriminator_back.load_state_dict(torch.load(out / "D.pth"))
    assert_port_parity(model_path, generator_back, discriminator_back, 32)
    written = convert_to_pytorch(model_path, str(tmp_path / "again"))
    assert written["generator"][2] and written["discriminator"][2]


def test_to_pytorch_without_biases_loads_into_the_default_port(tmp_path):
    generator, discriminator, (g_path, d_path) = save_port(tmp_path, 32, bias=False)
    model_path = str(tmp_path / "port.keras")
    convert_to_keras("pytorch", g_path, model_path, d_path)
    convert_to_pytorch(model_path, str(tmp_path / "back"))
    fresh_g, fresh_d = port_networks(32, bias=False, seed=5)
    fresh_g.load_state_dict(torch.load(tmp_path / "back" / "G.pth"))  # strict: same keys, same shapes
    fresh_d.load_state_dict(torch.load(tmp_path / "back" / "D.pth"))
    assert_port_parity(model_path, fresh_g, fresh_d, 32)


# ---------------------------------------------------------------- bad input: one line, exit 2


def run_cli(argv, capsys):
    with pytest.raises(SystemExit) as raised:
        convert.main(["convert"] + argv)
    assert raised.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    return err


def test_other_architecture_names_the_layer(tmp_path, capsys):
    _, _, (g_path, _) = save_port(tmp_path, 32)
    state = torch.load(g_path)
    state["layer3.0.weight"] = torch.zeros(128, 32, 4, 4, 4)
    torch.save(state, tmp_path / "odd.pth")
    err = run_cli(["--from=pytorch", f"--generator={tmp_path / 'odd.pth'}", f"--out={tmp_path / 'x.keras'}"], capsys)
    assert "layer3.0.weight has shape (128, 32, 4, 4, 4)" in err and "(128, 64, 4, 4, 4)" in err
    layers = generator_layers(32)
    layers[2] = (np.zeros((128, 60, 4, 4, 4), "float32"),) + layers[2][1:]
    write_t7(tmp_path / "odd.t7", torch7_generator(layers))
    err = run_cli(["--from=torch7", f"--generator={tmp_path / 'odd.t7'}", f"--out={tmp_path / 'x.keras'}"], capsys)
    assert "modules[7].weight has shape (128, 60, 4, 4, 4)" in err
    assert not (tmp_path / "x.keras").exists()


def test_missing_and_unexpected_tensors_are_named(tmp_path, capsys):
    _, _, (g_path, _) = save_port(tmp_path, 32)
    state = torch.load(g_path)
    del state["layer2.1.running_var"]
    torch.save(state, tmp_path / "missing.pth")
    err = run_cli(["--from=pytorch", f"--generator={tmp_path / 'missing.pth'}", f"--out={tmp_path / 'x.keras'}"],
                  capsys)
    assert "missing layer2.1.running_var" in err
    state = torch.load(g_path)
    state["layer6.0.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "extra.pth")
    err = run_cli(["--from=pytorch", f"--generator={tmp_path / 'extra.pth'}", f"--out={tmp_path / 'x.keras'}"],
                  capsys)
    assert "unexpected layer6.0.weight" in err


def test_truncated_files(tmp_path, capsys):
    write_t7(tmp_path / "g.t7", torch7_generator(generator_layers(32)))
    generator, _, _ = save_port(tmp_path, 32)
    torch.save(generator.state_dict(), tmp_path / "G.pkl", _use_new_zipfile_serialization=False)
    for name, source in (("g.t7", "torch7"), ("G.pth", "pytorch"), ("G.pkl", "pytorch")):
        data = (tmp_path / name).read_bytes()
        for cut in (len(data) // 2, len(data) - 7):
            (tmp_path / f"cut-{name}").write_bytes(data[:cut])
            err = run_cli([f"--from={source}", f"--generator={tmp_path / f'cut-{name}'}",
                           f"--out={tmp_path / 'x.keras'}"], capsys)
            assert f"cut-{name}" in err and ("truncated" in err or "damaged" in err or "not a" in err)
            if source == "pytorch":
                with pytest.raises(ConversionError, match="damaged or truncated"):
                    load_state_dict(str(tmp_path / f"cut-{name}"), use_torch=False)


class _Payload:
    """Unpickling this would create the marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)


@pytest.mark.parametrize("use_torch", [True, False])
@pytest.mark.parametrize("zip_format", [True, False])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, use_torch, zip_format):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pth"
    payload = pickle.dumps({"layer1.0.weight": _Payload(str(marker))}, protocol=2)
    if zip_format:
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("evil/data.pkl", payload)
            archive.writestr("evil/version", "3\n")
    else:
        header = b"".join(pickle.dumps(v, protocol=2) for v in (0x1950A86A20F9469CFC6C, 1001, {}))
        path.write_bytes(header + payload + pickle.dumps([], protocol=2))
    with pytest.raises(ConversionError, match="evil.pth"):
        load_state_dict(str(path), use_torch=use_torch)
    assert not marker.exists()


def test_discriminator_given_as_generator(tmp_path, capsys):
    _, _, (_, d_path) = save_port(tmp_path, 32)
    err = run_cli(["--from=pytorch", f"--generator={d_path}", f"--out={tmp_path / 'x.keras'}"], capsys)
    assert "is a 32^3 discriminator" in err and "given as the generator" in err
    err = run_cli(["--from=pytorch", f"--generator={tmp_path / 'nothing.pth'}", f"--out={tmp_path / 'x.keras'}"],
                  capsys)
    assert "nothing.pth: no such file" in err


def test_cli_runs_as_a_module_with_one_line_errors(tmp_path):
    result = subprocess.run([sys.executable, "-m", "keras_vaegan.convert", "--from=torch7",
                             f"--generator={tmp_path / 'none.t7'}", f"--out={tmp_path / 'x.keras'}"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'none.t7'}: no such file"


def torch7_discriminator(port_discriminator):
    """The port's discriminator as a Torch7 nn.Sequential of VolumetricConvolution, BatchNorm, LeakyReLU."""
    modules = []
    for i in range(1, 6):
        layer = getattr(port_discriminator, f"layer{i}")
        conv = layer[0]
        fields = dict(nInputPlane=conv.in_channels, nOutputPlane=conv.out_channels,
                      weight=conv.weight.detach().numpy(), bias=np.zeros(conv.out_channels, "float32"))
        for axis, pad in zip("THW", conv.padding):
            fields.update({f"k{axis}": 4, f"d{axis}": 2, f"pad{axis}": pad})
        modules.append(TorchClass("nn.VolumetricConvolution", fields))
        if i == 5:
            modules.append(TorchClass("nn.Sigmoid", {}))
            continue
        norm = layer[1]
        modules.append(TorchClass("nn.VolumetricBatchNormalization", dict(
            eps=norm.eps, weight=norm.weight.detach().numpy(), bias=norm.bias.detach().numpy(),
            running_mean=norm.running_mean.numpy(), running_var=norm.running_var.numpy()), version=2))
        modules.append(TorchClass("nn.LeakyReLU", dict(negval=0.2, inplace=False)))
    return TorchClass("nn.Sequential", dict(modules=modules))


def test_torch7_discriminator_parity_and_kind_check(tmp_path, capsys):
    _, port_discriminator = port_networks(32)
    g_path, d_path = str(tmp_path / "G.t7"), str(tmp_path / "D.t7")
    write_t7(g_path, torch7_generator(generator_layers(32)))
    write_t7(d_path, torch7_discriminator(port_discriminator))
    out = str(tmp_path / "gan.keras")
    convert_to_keras("torch7", g_path, out, d_path)
    voxels = (np.random.default_rng(0).random((2, 32, 32, 32)) < 0.3).astype("float32")
    with torch.no_grad():
        probability = port_discriminator(torch.from_numpy(voxels)[:, None]).reshape(2, 1).numpy()
    logits = keras.saving.load_model(out, compile=False).discriminator(voxels[..., None], training=False).numpy()
    assert np.abs(1 / (1 + np.exp(-logits)) - probability).max() <= TOLERANCE
    err = run_cli(["--from=torch7", f"--generator={d_path}", f"--out={tmp_path / 'x.keras'}"], capsys)
    assert "is a 32^3 discriminator" in err and "given as the generator" in err


def test_torch7_path_needs_no_torch(tmp_path):
    path, out = tmp_path / "g.t7", tmp_path / "g.keras"
    write_t7(path, torch7_generator(generator_layers(32)))
    code = ("import sys\n"
            "class NoTorch:\n"  # any `import torch` now fails
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch': raise ImportError(name)\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from keras_vaegan import convert\n"
            f"convert.main(['convert', '--from=torch7', '--generator={path}', '--out={out}'])\n"
            "print('TORCH_LOADED=' + str(sys.modules.get('torch') is not None))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("TORCH_LOADED=False") and out.exists()
    assert "generator.block5.conv.kernel" in result.stdout
