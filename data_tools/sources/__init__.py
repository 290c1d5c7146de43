"""The dataset layouts data_tools converts: one module per source, each listing tasks and loading them.

A source module has
  LAYOUTS                       names of the layouts it recognizes (for messages)
  list_tasks(settings) -> (layout, [Task])   raises LayoutError when no layout fits
  load(task, settings) -> [Sample]           raises on a bad file (the task is skipped)
"""

import dataclasses
import hashlib
import importlib

from data_tools import worker_memory

SOURCE_NAMES = ("ikea", "shapenet", "modelnet", "files")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What one conversion does; everything but the runner options goes into the dataset's fingerprint."""

    source: str
    input_path: str
    out_dir: str
    resolution: int = 32
    views: int = 4
    image_size: int = 128
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    shard_mb: float = 64.0
    max_error_rate: float = 0.05
    backgrounds: str = ""
    up_axis: str = "z"
    classes: tuple = ()
    voxel_up_axis: str = "z"
    voxel_framing: str = "fit"
    worker_memory_gb: float = worker_memory.DEFAULT_GB

    def fingerprint_fields(self):
        """The settings that decide the dataset's content (the output folder and limits are not among them)."""
        fields = dataclasses.asdict(self)
        del fields["out_dir"], fields["max_error_rate"], fields["worker_memory_gb"]
        return fields


@dataclasses.dataclass(frozen=True)
class Task:
    """One unit of conversion: a model (and its images) that yields one or more records."""

    source_id: str
    model_id: str
    class_name: str
    kind: str
    paths: tuple
    index: int = -1
    image_path: str = ""
    estimated_bytes: int = 0


@dataclasses.dataclass
class Sample:
    """A converted sample before validation: voxels at any resolution, optional native grid and image."""

    voxels: object
    image: bytes = b""
    native_voxels: object = None
    view: int = -1


def module(source):
    """The module of a source name."""
    if source not in SOURCE_NAMES:
        raise ValueError(f"unknown source {source!r}, expected one of {', '.join(SOURCE_NAMES)}")
    return importlib.import_module(f"data_tools.sources.{source}")


def stable_hash(text):
    """A 64-bit integer from text that is the same in every process and run (unlike hash())."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def voxel_bytes(resolution):
    """Bytes of one packed grid in a record, with the record's other small fields."""
    return resolution**3 // 8 + 128
