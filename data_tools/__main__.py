"""The data conversion command line.

    python -m data_tools <ikea|shapenet|modelnet|files> --input=PATH --out=DIR [--resolution=32|64] ...
    python -m data_tools inspect DIR [--samples=16]

(also installed as `keras-vaegan-data`). See docs/data.md for every source's layouts.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before anything imports TensorFlow

from absl import flags  # noqa: E402

from data_tools import worker_memory  # noqa: E402
from data_tools.sources import SOURCE_NAMES  # noqa: E402
from vaegan_utils.cli import console_entry, fail, parse_flags  # noqa: E402

COMMANDS = SOURCE_NAMES + ("inspect",)
FLAGS = flags.FlagValues()
flags.DEFINE_string("input", None, "Dataset file or folder to convert.", flag_values=FLAGS)
flags.DEFINE_string("out", None, "Output dataset folder: <split>/*.tfrecord-*, manifest.json, report.json, "
                    "classes.txt.", flag_values=FLAGS)
flags.DEFINE_integer("resolution", 32, "Edge of the voxel grids written: 32 or 64.", flag_values=FLAGS)
flags.DEFINE_integer("views", 4, "shapenet/files: rendered photos per mesh (records per model); 0: voxels only. "
                     "ikea: 0 writes the model library (one voxel-only record per model) instead of the photos.",
                     flag_values=FLAGS)
flags.DEFINE_integer("image_size", 128, "shapenet/files: edge of the rendered photos in pixels.", flag_values=FLAGS)
flags.DEFINE_string("backgrounds", "", "shapenet/files: folder of background photos (e.g. the SUN database); "
                    "renders are composited over random crops of them (plain white without it).", flag_values=FLAGS)
flags.DEFINE_enum("up_axis", "z", ["y", "z"], "files: the up axis of the meshes (ShapeNet and most OBJ "
                  "exports: y; ModelNet: z). Fronts are taken to face -y (z up) or -z (y up).", flag_values=FLAGS)
flags.DEFINE_enum("voxel_up_axis", "z", ["x", "y", "z"], "modelnet voxel arrays (.npy, .npy.gz, .npz): the "
                  "stored axis that is up, swapped with z (z: as stored, as in the ModelNet files checked).",
                  flag_values=FLAGS)
flags.DEFINE_enum("voxel_framing", "fit", ["fit", "stored"], "modelnet voxel arrays: fit refits each shape as "
                  "meshes and the IKEA library are (longest side spanning the grid, centred on every axis); "
                  "stored keeps the file's framing.", flag_values=FLAGS)
flags.DEFINE_list("classes", [], "Convert only these classes (comma-separated names, as in classes.txt); "
                  "all when empty.", flag_values=FLAGS)
flags.DEFINE_integer("seed", 0, "Seed of the render viewpoints and background crops.", flag_values=FLAGS)
flags.DEFINE_float("val_fraction", 0.1, "Share of models in the val split (by a hash of the model id).",
                   flag_values=FLAGS)
flags.DEFINE_float("test_fraction", 0.1, "Share of models in the test split (by a hash of the model id).",
                   flag_values=FLAGS)
flags.DEFINE_float("shard_mb", 64.0, "Target size of one TFRecord shard in MiB.", flag_values=FLAGS)
flags.DEFINE_float("max_error_rate", 0.05, "Abort when more than this share of samples is bad.", flag_values=FLAGS)
flags.DEFINE_bool("overwrite", False, "Replace a different dataset already in --out.", flag_values=FLAGS)
flags.DEFINE_string("runner", "DirectRunner", "Beam runner: DirectRunner, DataflowRunner, FlinkRunner, SparkRunner.",
                    flag_values=FLAGS)
flags.DEFINE_integer("num_workers", 2, "DirectRunner: worker processes.", flag_values=FLAGS)
flags.DEFINE_enum("direct_running_mode", "multi_processing", ["multi_processing", "multi_threading", "in_memory"],
                  "DirectRunner: how workers run.", flag_values=FLAGS)
flags.DEFINE_string("pipeline_options", "", "Further Beam options for the runner, as one string, e.g. "
                    "\"--project=P --region=R --temp_location=gs://B/tmp\".", flag_values=FLAGS)
flags.DEFINE_float("worker_memory_gb", worker_memory.DEFAULT_GB, "Memory (GiB of data, RLIMIT_DATA) a worker may "
                   "take on while it converts one sample; a sample needing more is skipped as bad. 0: no limit.",
                   flag_values=FLAGS)
flags.DEFINE_integer("samples", 16, "inspect: records pictured in contact_sheet.png.", flag_values=FLAGS)


def _convert(command):
    from data_tools.convert import ConvertError, convert
    from data_tools.sources import Settings

    if FLAGS.num_workers < 1:
        fail(f"--num_workers: {FLAGS.num_workers} must be at least 1")
    settings = Settings(
        source=command, input_path=FLAGS.input, out_dir=FLAGS.out, resolution=FLAGS.resolution, views=FLAGS.views,
        image_size=FLAGS.image_size, seed=FLAGS.seed, val_fraction=FLAGS.val_fraction,
        test_fraction=FLAGS.test_fraction, shard_mb=FLAGS.shard_mb, max_error_rate=FLAGS.max_error_rate,
        backgrounds=FLAGS.backgrounds, up_axis=FLAGS.up_axis, worker_memory_gb=FLAGS.worker_memory_gb,
        classes=tuple(sorted({name for name in FLAGS.classes if name})), voxel_up_axis=FLAGS.voxel_up_axis,
        voxel_framing=FLAGS.voxel_framing,
    )
    runner = (FLAGS.runner, FLAGS.num_workers, FLAGS.direct_running_mode, FLAGS.pipeline_options)
    try:
        result, already = convert(settings, runner, overwrite=FLAGS.overwrite)
    except ConvertError as error:
        fail(str(error))
    if already:
        print(f"{FLAGS.out}: already complete ({result['records']} records), nothing to do")
        return
    counts = ", ".join(f"{split} {sum(result['counts'][split].values())}" for split in result["counts"])
    print(f"wrote {result['records']} records ({counts}) of {len(result['classes'])} classes at "
          f"{result['resolution']}^3 to {FLAGS.out}; {result['skipped']} samples skipped (report.json)")


def _inspect(folder):
    from data_tools.inspect_dataset import InspectError, inspect

    try:
        lines = inspect(folder, FLAGS.samples, FLAGS.seed)
    except InspectError as error:
        fail(str(error))
    print("\n".join(lines))


def main(argv):
    command, *rest = parse_flags(FLAGS, argv, __doc__, positional=2) or [None]
    if command not in COMMANDS:
        fail(f"{command or 'no command'}: expected one of {', '.join(COMMANDS)} "
             f"(python -m data_tools <source> --input=PATH --out=DIR, or inspect DIR)")
    if command == "inspect":
        if len(rest) != 1:
            fail("inspect: expected one dataset folder (python -m data_tools inspect DIR)")
        _inspect(rest[0])
        return
    if rest:
        fail(f"unexpected argument {rest[0]!r} (settings look like --name=value)")
    for name in ("input", "out"):
        if not FLAGS[name].value:
            fail(f"--{name} is required")
    _convert(command)


run = console_entry(main)

if __name__ == "__main__":
    run()
