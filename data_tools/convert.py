"""Runs one conversion end to end: checks, listing, the Beam pipeline, the error budget, finalization.

The output folder only becomes a dataset when everything succeeded: shards are written into
OUT/.incomplete-<fingerprint>/, and moved into OUT/<split>/ with classes.txt, report.json and, last,
manifest.json. Rerunning an interrupted command resumes: finished shards are kept, the rest redone.
"""

import collections
import contextlib
import json
import os
import shutil
import tempfile
import threading

from data_tools import manifest, pipeline, sources, voxel_frame, worker_memory
from data_tools.sources.common import background_files
from keras_vaegan.data import SCHEMA_VERSION
from vaegan_utils.errors import LayoutError, first_line


class ConvertError(ValueError):
    """A conversion that cannot go on; the message starts with the file, folder or flag to blame."""


def _check_settings(settings):
    checks = (
        ("--resolution", settings.resolution in (32, 64), f"{settings.resolution} is not one of 32, 64"),
        ("--views", 0 <= settings.views <= 100, f"{settings.views} is not in [0, 100]"),
        ("--up_axis", settings.up_axis in ("y", "z"), f"{settings.up_axis!r} is not one of y, z"),
        ("--voxel_up_axis", settings.voxel_up_axis in voxel_frame.UP_AXES,
         f"{settings.voxel_up_axis!r} is not one of {', '.join(voxel_frame.UP_AXES)}"),
        ("--voxel_framing", settings.voxel_framing in voxel_frame.FRAMINGS,
         f"{settings.voxel_framing!r} is not one of {', '.join(voxel_frame.FRAMINGS)}"),
        ("--image_size", 32 <= settings.image_size <= 1024, f"{settings.image_size} is not in [32, 1024]"),
        ("--val_fraction", 0 <= settings.val_fraction < 1, f"{settings.val_fraction} is not in [0, 1)"),
        ("--test_fraction", 0 <= settings.test_fraction < 1 - settings.val_fraction,
         f"{settings.test_fraction} leaves no training data with --val_fraction={settings.val_fraction}"),
        ("--shard_mb", settings.shard_mb > 0, f"{settings.shard_mb} must be positive"),
        ("--max_error_rate", 0 <= settings.max_error_rate <= 1, f"{settings.max_error_rate} is not in [0, 1]"),
        ("--seed", settings.seed >= 0, f"{settings.seed} is negative"),
    )
    for name, ok, problem in checks:
        if not ok:
            raise ConvertError(f"{name}: {problem}")
    memory_problem = worker_memory.flag_problem(settings.worker_memory_gb)
    if memory_problem:
        raise ConvertError(f"--worker_memory_gb: {memory_problem}")
    if not settings.input_path:
        raise ConvertError("--input: no input path given")
    if not os.path.exists(settings.input_path):
        raise ConvertError(f"{settings.input_path}: no such file or directory (--input)")
    if not settings.out_dir:
        raise ConvertError("--out: no output directory given")
    if settings.backgrounds and not os.path.isdir(settings.backgrounds):
        raise ConvertError(f"{settings.backgrounds}: not a directory (--backgrounds)")
    if settings.backgrounds and not background_files(settings.backgrounds):
        raise ConvertError(f"{settings.backgrounds}: holds no .jpg, .jpeg or .png photos (--backgrounds)")


def _keep_classes(tasks, settings):
    """The tasks of the classes in settings.classes (all when it is empty); ConvertError naming --classes
    and the classes present when one of them is not."""
    if not settings.classes:
        return tasks
    present = sorted({task.class_name for task in tasks})
    missing = [name for name in settings.classes if name not in present]
    if missing:
        raise ConvertError(f"--classes: {settings.input_path} holds no {', '.join(missing)}; its classes: "
                           f"{', '.join(present)}")
    return [task for task in tasks if task.class_name in settings.classes]


def _prepare_staging(staging, digest):
    """Creates the staging folder; shards from an earlier run with another plan (the input changed) go."""
    marker = os.path.join(staging, "plan.json")
    if os.path.exists(marker):
        with open(marker) as file:
            if json.load(file).get("digest") == digest:
                return
        shutil.rmtree(staging)
    os.makedirs(staging, exist_ok=True)
    pipeline.write_json(marker, {"digest": digest})


def _read_sidecars(staging, keys):
    found = {}
    for key in keys:
        path = os.path.join(staging, pipeline.shard_stem(key) + ".json")
        if os.path.exists(path):
            with open(path) as file:
                found[key] = json.load(file)
    return found


def _watch_progress(staging, total, stream, stop):
    from vaegan_utils.cli import ProgressCounter

    counter = ProgressCounter("convert", "samples", stream=stream)
    while not stop.wait(1.0):
        counter(min(pipeline.tasks_done(staging), total), total)


def _run_pipeline(todo, settings, class_ids, staging, runner_options):
    log_path = os.path.join(tempfile.gettempdir(), f"keras-vaegan-beam-{os.path.basename(staging)}.log")
    stop = threading.Event()
    with pipeline.beam_output_to(log_path) as terminal:
        options = pipeline.pipeline_options(*runner_options)
        watcher = threading.Thread(target=_watch_progress, args=(staging, len(todo), terminal, stop), daemon=True)
        watcher.start()
        try:
            pipeline.run(todo, settings, class_ids, staging, options)
        except Exception as error:
            raise ConvertError(f"{staging}: the conversion failed ({_cause(error)}); finished shards are kept "
                               f"there and rerunning the same command resumes (Beam's log: {log_path})") from None
        finally:
            stop.set()
            watcher.join()
        print(f"convert: {len(todo)}/{len(todo)} samples (100%)", file=terminal, flush=True)
    with contextlib.suppress(OSError):
        os.remove(log_path)


def _cause(error):
    """The most telling line of a pipeline failure: the worker's own error when Beam quotes it."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith(("OSError", "PermissionError", "MemoryError", "RuntimeError")):
            return line[:300]
    return first_line(error, 300)


def _report(settings, layout, tasks, sidecars):
    skipped = [entry for key in sorted(sidecars) for entry in sidecars[key]["skipped"]]
    skipped.sort(key=lambda entry: entry["source_id"])
    rate = len(skipped) / max(len(tasks), 1)
    return {
        "source": settings.source, "layout": layout, "input_path": os.path.abspath(settings.input_path),
        "samples_listed": len(tasks), "samples_skipped": len(skipped), "error_rate": round(rate, 6),
        "max_error_rate": settings.max_error_rate,
        "records": sum(s["records"] for s in sidecars.values()), "skipped": skipped,
    }


def _finalize(settings, layout, classes, sidecars, staging, print_, report):
    out = settings.out_dir
    manifest.remove_dataset(out, keep=staging)
    counts = {split: collections.Counter() for split in pipeline.SPLITS}
    shards = {split: [] for split in pipeline.SPLITS}
    sources_hashes = {}
    for split in pipeline.SPLITS:
        keys = sorted(key for key, side in sidecars.items() if key[0] == split and side["records"])
        os.makedirs(os.path.join(out, split), exist_ok=True)
        for index, key in enumerate(keys):
            side = sidecars[key]
            name = f"{split}.tfrecord-{index:05d}-of-{len(keys):05d}"
            source = os.path.join(staging, pipeline.shard_stem(key) + ".tfrecord")
            target = os.path.join(out, split, name)
            if os.path.exists(source):
                os.replace(source, target)
            counts[split].update(side["classes"])
            shards[split].append({"file": f"{split}/{name}", "records": side["records"], "bytes": side["bytes"],
                                  "sha256": side["sha256"]})
    for side in sidecars.values():
        sources_hashes.update(side["sources"])
    root = os.path.abspath(settings.input_path)
    base = root if os.path.isdir(root) else os.path.dirname(root)
    with open(os.path.join(out, manifest.CLASSES) + ".tmp", "w") as file:
        file.write("".join(f"{name}\n" for name in classes))
    os.replace(os.path.join(out, manifest.CLASSES) + ".tmp", os.path.join(out, manifest.CLASSES))
    pipeline.write_json(os.path.join(out, manifest.REPORT), report)
    pipeline.write_json(os.path.join(out, manifest.MANIFEST), {
        "fingerprint": print_, "schema_version": SCHEMA_VERSION, "tool": "keras-vaegan data_tools",
        "tool_version": manifest.tool_version(), "settings": dict(settings.fingerprint_fields(), input_path=root),
        "layout": layout, "resolution": settings.resolution,
        "native_resolutions": sorted({n for side in sidecars.values() for n in side["native_resolutions"]}),
        "classes": classes,
        "counts": {split: dict(sorted(counts[split].items())) for split in pipeline.SPLITS},
        "records": sum(sum(c.values()) for c in counts.values()), "skipped": report["samples_skipped"],
        "shards": shards,
        "sources": {"root": root,
                    "files": {os.path.relpath(path, base): digest for path, digest in sorted(sources_hashes.items())}},
    })
    shutil.rmtree(staging)


def convert(settings, runner_options=("DirectRunner", 2, "multi_processing", ""), overwrite=False):
    """Converts `settings.input_path` into the dataset folder `settings.out_dir`; returns its manifest.

    `runner_options` = (runner, direct_num_workers, direct_running_mode, extra pipeline options).
    Returns (manifest, already_complete). Raises ConvertError for anything the user has to fix.
    """
    _check_settings(settings)
    source = sources.module(settings.source)
    print_ = manifest.fingerprint(settings)
    state = manifest.output_state(settings.out_dir, print_)
    if state == "complete":
        return manifest.read_manifest(settings.out_dir), True
    if state == "other" and not overwrite:
        if not os.path.isdir(settings.out_dir):
            raise ConvertError(f"{settings.out_dir}: exists and is not a directory (--out)")
        raise ConvertError(f"{settings.out_dir}: already holds {manifest.describe(settings.out_dir)}; "
                           f"pass --overwrite to replace it (--out)")
    try:
        layout, tasks = source.list_tasks(settings)
    except LayoutError as error:
        raise ConvertError(str(error)) from None
    tasks = _keep_classes(tasks, settings)
    duplicates = [sid for sid, n in collections.Counter(t.source_id for t in tasks).items() if n > 1]
    if duplicates:
        raise ConvertError(f"{settings.input_path}: sample id {duplicates[0]} occurs twice")
    classes = sorted({task.class_name for task in tasks})
    class_ids = {name: index for index, name in enumerate(classes)}
    planned = pipeline.plan(tasks, settings)
    staging = manifest.staging_dir(settings.out_dir, print_)
    _prepare_staging(staging, pipeline.plan_digest(planned))
    done = _read_sidecars(staging, {key for key, _ in planned})
    todo = [(key, task) for key, task in planned if key not in done]
    if todo:
        _run_pipeline(todo, settings, class_ids, staging, runner_options)
    sidecars = _read_sidecars(staging, {key for key, _ in planned})
    missing = {key for key, _ in planned} - set(sidecars)
    if missing:
        raise ConvertError(f"{staging}: the pipeline finished without writing {pipeline.shard_stem(min(missing))}; "
                           f"rerun the same command")
    report = _report(settings, layout, tasks, sidecars)
    if report["error_rate"] > settings.max_error_rate:
        report_path = os.path.join(staging, manifest.REPORT)
        pipeline.write_json(report_path, report)
        first = report["skipped"][0]
        example = first["reason"] if first["reason"].startswith(first["path"]) else f"{first['path']}: {first['reason']}"
        raise ConvertError(f"{report_path}: {report['samples_skipped']} of {report['samples_listed']} samples failed "
                           f"({report['error_rate']:.1%} > --max_error_rate={settings.max_error_rate}), e.g. {example}")
    _finalize(settings, layout, classes, sidecars, staging, print_, report)
    return manifest.read_manifest(settings.out_dir), False
