"""Generated bad inputs for every reader and command line: one-line errors, exit 2, nothing left behind.

Readers (binvox, OFF/OBJ/PLY/STL, .mat, .npy, photos, .tflite, .keras) get random bytes, real files with
flipped bytes or cut short, and headers claiming billions of voxels or vertices; they run in a child
process whose address space is capped, so a reader that allocates what a header claims fails the test.
The command lines (train.py, data_tools, export, export.infer, evaluate) run in this process with bad
flags, bad files and unwritable folders. The default suite runs a seeded subset; `-m large` all cases.
"""

import json
import os
import random
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from conftest import assert_refused, run_cli
from hostile_files import mat_claiming, npy_header, png_header

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
REAL_FILES = {
    "binvox": os.path.join(SHARED, "binvox", "chair.binvox"),
    "off": os.path.join(SHARED, "meshes", "modelnet-chair_0001.off"),
    "obj": os.path.join(SHARED, "meshes", "shapenet-model_normalized.obj"),
    "mat": os.path.join(SHARED, "ikea-sample", "Voxels", "1.mat"),
    "npy.gz": os.path.join(SHARED, "modelnet10-chair-32.npy.gz"),
}
MEMORY_LIMIT = 3 << 30  # bytes of address space for the reader process
FAST_SHARE = 6  # the default suite runs one case in this many


# ---------------------------------------------------------------- bad files


def random_bytes(rng, size):
    return bytes(rng.getrandbits(8) for _ in range(size))


def flipped(rng, content, flips):
    content = bytearray(content)
    for _ in range(flips):
        content[rng.randrange(len(content))] ^= 1 << rng.randrange(8)
    return bytes(content)


def header_bombs():
    """(extension, bytes): headers claiming far more than the file holds."""
    return [
        ("binvox", b"#binvox 1\ndim 100000 100000 100000\ntranslate 0 0 0\nscale 1\ndata\n" + b"\x01\xff" * 8),
        ("binvox", b"#binvox 1\ndim 4000000000 4000000000 4000000000\ndata\n\x00\xff"),
        ("off", b"OFF\n2000000000 2000000000 0\n0 0 0\n"),
        ("off", b"OFF 999999999999 1 0\n"),
        ("npy", npy_header((100000, 64, 64, 64))),
        ("npy", npy_header((10**12, 2, 2, 2), "<f8")),
        ("mat", mat_claiming((4096, 4096, 4096))),
        ("png", png_header(100000, 100000)),
        ("png", png_header(9000, 9000)),
        ("tflite", b"\x1c\x00\x00\x00TFL3" + b"\xff" * 56),
    ]


def bad_files(rng, count):
    """`count` (extension, bytes) cases: random bytes, damaged real files, header bombs."""
    cases = header_bombs()
    extensions = ("binvox", "off", "obj", "ply", "stl", "mat", "npy", "npy.gz", "png", "jpg", "tflite", "keras")
    real = {ext: open(path, "rb").read() for ext, path in REAL_FILES.items()}
    while len(cases) < count:
        ext = rng.choice(extensions)
        kind = rng.choice(("random", "random", "flip", "cut"))
        source = real.get(ext)
        if kind == "random" or source is None:
            cases.append((ext, random_bytes(rng, rng.choice((0, 1, 7, 64, 1000)))))
        elif kind == "flip":
            cases.append((ext, flipped(rng, source, rng.choice((1, 3, 30)))))
        else:
            cases.append((ext, source[: rng.randrange(len(source))]))
    return cases


# ---------------------------------------------------------------- readers, in a child with capped memory

READER_CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), int(sys.argv[1])))
from export.edge import EdgeModel, EdgeModelError
from vaegan_utils import readers
from vaegan_utils.images import ImageError, read_rgb
import open3d  # imported once, as in a conversion worker: the times below are the reads alone
READERS = {"binvox": readers.read_binvox, "off": readers.read_mesh, "obj": readers.read_mesh,
           "ply": readers.read_mesh, "stl": readers.read_mesh, "mat": readers.read_mat_voxels,
           "npy": readers.read_voxel_array, "npy.gz": readers.read_voxel_array, "npz": readers.read_labelled_voxels,
           "png": (readers.read_image, read_rgb), "jpg": (readers.read_image, read_rgb),
           "gif": (readers.read_image, read_rgb), "bmp": (readers.read_image, read_rgb), "tflite": EdgeModel}
for path in sys.argv[2:]:
    ext = path.rsplit("/", 1)[-1].split(".", 1)[1]
    for read in READERS[ext] if isinstance(READERS[ext], tuple) else (READERS[ext],):
        start, message = time.monotonic(), ""
        try:
            read(path)
            outcome = "read"
        except (readers.BadFile, ImageError, EdgeModelError) as error:
            message = str(error)
            outcome = "refused" if message.startswith(path) and "\n" not in message else f"unnamed: {error}"
        except BaseException as error:
            outcome = f"crash: {type(error).__name__}: {str(error)[:200]}"
        seconds = time.monotonic() - start
        with open("/proc/self/status") as status:  # this process's own peak: ru_maxrss keeps the parent's across exec
            peak_mib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
        print(json.dumps([path, read.__name__, outcome, seconds, peak_mib, message]), flush=True)
"""


def check_readers(tmp_path, cases):
    """Runs every reader of each (extension, bytes) case in a child with capped address space; returns
    [path, reader, outcome, seconds, peak resident MiB so far, message] per read."""
    paths = []
    for i, (ext, content) in enumerate(cases):
        if ext == "keras":
            continue  # the command lines below read .keras files
        path = tmp_path / f"case{i:03d}.{ext}"
        path.write_bytes(content)
        paths.append(str(path))
    child = subprocess.run([sys.executable, "-c", READER_CHILD, str(MEMORY_LIMIT), *paths], capture_output=True,
                           text=True, cwd=ROOT, timeout=600)
    results = [json.loads(line) for line in child.stdout.splitlines()]
    assert child.returncode == 0, f"{child.returncode}: {child.stderr[-2000:]} after {results[-1:]}"
    bad = [result[:3] for result in results if result[2] not in ("read", "refused")]
    assert not bad, bad
    assert {result[0] for result in results} == set(paths)
    return results


def test_readers_refuse_bad_files_by_name_within_bounded_memory(tmp_path):
    cases = bad_files(random.Random(0), 60)
    results = check_readers(tmp_path, cases[:: FAST_SHARE // 2] + header_bombs())
    bombs = {str(tmp_path / f"case{i:03d}.{ext}") for i, (ext, _) in enumerate(header_bombs())}
    assert all(outcome == "refused" for path, _, outcome, *_ in results if path in bombs)


@pytest.mark.large
def test_readers_full_fuzz(tmp_path):
    results = check_readers(tmp_path, bad_files(random.Random(1), 300))
    print(f"readers: {len(results)} reads of 300 generated files, "
          f"{sum(outcome == 'refused' for _, _, outcome, *_ in results)} refused")


# ---------------------------------------------------------------- command lines, in this process


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Files the command lines are pointed at: good data and a model, and bad ones of every kind."""
    from data_tools.synthetic import write_synthetic_dataset
    from conftest import save_tiny_model

    root = tmp_path_factory.mktemp("world")
    rng = random.Random(2)
    good_data = root / "data"
    write_synthetic_dataset(str(good_data), resolution=32, shapes_per_class=1, views_per_shape=1, image_size=32,
                            num_shards=1)
    model = save_tiny_model(str(root), "gan")
    shard = sorted(good_data.glob("*.tfrecord*"))[0].read_bytes()
    files = {"good_data": str(good_data), "model": model, "a_file": str(root / "plain.txt")}
    (root / "plain.txt").write_text("not a folder\n")
    for name, content in {
        "random_shard": random_bytes(rng, 3000), "cut_shard": shard[: len(shard) // 2],
        "flipped_shard": flipped(rng, shard, 5), "empty_shard": b"",
    }.items():
        (root / name).mkdir()
        (root / name / "train.tfrecord-00000-of-00001").write_bytes(content)
        files[name] = str(root / name)
    model_bytes = open(model, "rb").read()
    with zipfile.ZipFile(model) as archive:
        config = archive.read("config.json")
    for name, content in {
        "random.keras": random_bytes(rng, 5000), "cut.keras": model_bytes[: len(model_bytes) // 3],
        "flipped.keras": flipped(rng, model_bytes, 20), "empty.keras": b"", "random.tflite": random_bytes(rng, 500),
        "random.jpg": random_bytes(rng, 800), "random.flags": random_bytes(rng, 300),
    }.items():
        (root / name).write_bytes(content)
        files[name] = str(root / name)
    weights_only = root / "noweights.keras"
    with zipfile.ZipFile(weights_only, "w") as archive:
        archive.writestr("config.json", config)
    files["noweights.keras"] = str(weights_only)
    return files


def cli_cases(world, out):
    """(name, main, flag values, argv) for every command line; `out` is the path nothing must appear at."""
    import data_tools.__main__ as data_cli
    import export.__main__ as export_cli
    import train
    from export import infer
    from keras_vaegan import evaluate

    under_file = os.path.join(world["a_file"], "sub")
    junk = ["--no_such_flag=1", "--batch_size=", "--batch_size=1e99", "--batch_size=x", "--seed=-3",
            "--train_steps=0", "--checkpoint_every=-1", "--on_nonfinite=maybe", "--bad_records=ignore",
            "--max_skipped_in_a_row=0", "--resolution=31", "--image_size=33", "--precision=int4",
            "--generator_learning_rate=nan", "--latent_dim=999999", "positional",
            f"--flagfile={world['random.flags']}", "--flagfile=/no/such.flags"]
    cases = [(f"train{flag}", train.main, train.FLAGS,
              ["train.py", f"--data_dir={world['good_data']}", f"--model_dir={out}", flag]) for flag in junk]
    for data in ("random_shard", "cut_shard", "flipped_shard", "empty_shard", "a_file"):
        cases.append((f"train-data-{data}", train.main, train.FLAGS,
                      ["train.py", f"--data_dir={world[data]}", f"--model_dir={out}", "--model_type=gan"]))
    cases.append(("train-data-missing", train.main, train.FLAGS, ["train.py", "--data_dir=/no/such", f"--model_dir={out}"]))
    for model in ("random.keras", "cut.keras", "flipped.keras", "empty.keras", "noweights.keras", "a_file"):
        cases.append((f"train-init-{model}", train.main, train.FLAGS,
                      ["train.py", f"--data_dir={world['good_data']}", f"--model_dir={out}", "--model_type=gan",
                       "--train_steps=1", f"--init_from={world[model]}"]))
    cases.append(("train-unwritable", train.main, train.FLAGS,
                  ["train.py", f"--data_dir={world['good_data']}", f"--model_dir={under_file}", "--model_type=gan"]))
    for model in ("random.keras", "cut.keras", "flipped.keras", "empty.keras", "noweights.keras", "random.tflite"):
        cases.append((f"export-{model}", export_cli.main, export_cli.FLAGS,
                      ["export", f"--model={world[model]}", f"--out={out}"]))
        cases.append((f"evaluate-{model}", evaluate.main, evaluate.FLAGS,
                      ["evaluate", "generation", f"--model={world[model]}", f"--data={world['good_data']}",
                       f"--out={out}", "--samples=2"]))
    for flag in ("--formats=onnx", "--formats=", "--formats=tflite_fp32,,x", "--calibration_samples=0",
                 "--parity_samples=-1", "--seed=-1", "--bogus=1"):
        cases.append((f"export{flag}", export_cli.main, export_cli.FLAGS,
                      ["export", f"--model={world['model']}", f"--out={out}", flag]))
    cases.append(("export-unwritable", export_cli.main, export_cli.FLAGS,
                  ["export", f"--model={world['model']}", f"--out={under_file}", "--formats=saved_model"]))
    for args in (["nosuchtask"], ["generation", "--threshold=5"], ["generation", "--data=/no/such"],
                 ["generation", f"--data={world['random_shard']}"], ["ikea", f"--data={world['a_file']}"],
                 ["classify", f"--data={world['good_data']}"], ["latent", f"--images={world['random.jpg']}"],
                 ["generation", f"--data={world['good_data']}", "--samples=1"], ["generation", "--steps=x"]):
        cases.append((f"evaluate-{'-'.join(args)}", evaluate.main, evaluate.FLAGS,
                      ["evaluate", *args, f"--model={world['model']}", f"--out={out}"]))
    cases.append(("evaluate-unwritable", evaluate.main, evaluate.FLAGS,
                  ["evaluate", "latent", f"--model={world['model']}", f"--out={under_file}"]))
    for model in ("random.tflite", "random.keras", "empty.keras", "a_file"):
        cases.append((f"infer-{model}", infer.main, infer.FLAGS,
                      ["infer", f"--model={world[model]}", f"--image={world['random.jpg']}", f"--out={out}"]))
    for args in (["--sample=-1"], ["--sample=2", f"--image={world['random.jpg']}"], ["--threshold=2", "--sample=1"],
                 ["--threads=0", "--sample=1"], ["--sample=1", "--no_flag"], []):
        cases.append((f"infer{''.join(args)}", infer.main, infer.FLAGS,
                      ["infer", f"--model={world['random.tflite']}", f"--out={out}", *args]))
    for args in ([], ["nosuch"], ["inspect"], ["inspect", "/no/such"], ["inspect", world["random_shard"]],
                 ["inspect", world["a_file"]], ["inspect", world["good_data"], "extra"],
                 ["files", "--input=/no/such", f"--out={out}"], ["files", f"--input={world['a_file']}", f"--out={out}"],
                 ["files", f"--input={world['good_data']}", f"--out={out}", "--resolution=48"],
                 ["shapenet", f"--input={world['good_data']}", f"--out={out}", "--num_workers=0"],
                 ["ikea", f"--input={world['random_shard']}", f"--out={out}"], ["modelnet", f"--out={out}"],
                 ["files", f"--input={world['good_data']}", f"--out={under_file}"]):
        cases.append((f"data_tools-{'-'.join(args)}", data_cli.main, data_cli.FLAGS, ["data_tools", *args]))
    return cases + generated_flag_cases(world, out, random.Random(3))


NOT_NUMBERS = ("", "x", "1.5.2", "0x1g", "--", "\u221e", "1,000", "nan-ish", "\x00", "12 34")


def generated_flag_cases(world, out, rng, per_cli=40):
    """Each CLI with one of its own numeric, enum or boolean flags set to a value it cannot take."""
    from absl import flags

    import data_tools.__main__ as data_cli
    import export.__main__ as export_cli
    import train
    from export import infer
    from keras_vaegan import evaluate

    clis = [
        ("train", train.main, train.FLAGS, ["train.py", f"--data_dir={world['good_data']}", f"--model_dir={out}"]),
        ("export", export_cli.main, export_cli.FLAGS, ["export", f"--model={world['model']}", f"--out={out}"]),
        ("infer", infer.main, infer.FLAGS, ["infer", f"--model={world['random.tflite']}", "--sample=1", f"--out={out}"]),
        ("evaluate", evaluate.main, evaluate.FLAGS, ["evaluate", "latent", f"--model={world['model']}", f"--out={out}"]),
        ("data_tools", data_cli.main, data_cli.FLAGS, ["data_tools", "files", f"--input={world['good_data']}", f"--out={out}"]),
    ]
    cases = []
    for name, main, flag_values, argv in clis:
        own = sorted(
            flag.name for flag in flag_values.flags_by_module_dict().get(_defining_module(flag_values, argv), [])
            if isinstance(flag, (flags.EnumFlag, flags.BooleanFlag)) or flag.flag_type() in ("int", "float")
        )
        for _ in range(per_cli):
            flag = flag_values[rng.choice(own)]
            value = rng.choice(NOT_NUMBERS) if flag.flag_type() in ("int", "float") else rng.choice(("maybe", "2", "x"))
            cases.append((f"{name}-generated--{flag.name}={value!r}", main, flag_values, argv + [f"--{flag.name}={value}"]))
    return cases


def _defining_module(flag_values, argv):
    """The module that defined a CLI's flags (the key of absl's flags_by_module_dict)."""
    modules = flag_values.flags_by_module_dict()
    return max(modules, key=lambda module: len(modules[module]) if not module.startswith("absl") else -1)


def check_clis(world, tmp_path, capsys, select):
    out = str(tmp_path / "out")
    cases = select(cli_cases(world, out))
    problems = []
    for name, main, flag_values, argv in cases:
        try:
            code, captured = run_cli(main, flag_values, argv, capsys)
            assert_refused(code, captured, argv)
            assert not os.path.exists(out), (name, os.listdir(out))
        except Exception as error:  # noqa: BLE001 (collects every case's failure, then fails with all of them)
            problems.append(f"{name}: {type(error).__name__}: {str(error)[:600]}")
            shutil.rmtree(out, ignore_errors=True)
    assert not problems, "\n".join(problems)
    return len(cases)


def test_command_lines_refuse_bad_input_in_one_line(world, tmp_path, capsys):
    count = check_clis(world, tmp_path, capsys, lambda cases: cases[::2])
    assert count >= 40


@pytest.mark.large
def test_command_lines_full_fuzz(world, tmp_path, capsys):
    count = check_clis(world, tmp_path, capsys, lambda cases: cases)
    with capsys.disabled():
        print(f"\ncommand lines: {count} bad invocations refused in one line")
