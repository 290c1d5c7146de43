"""Voxel arrays read from files (.npy, .npy.gz, .npz), put in the project's frame and framing.

The frame every source converts to: grids `[x, y, z]`, z (axis 2) up with index 0 the floor, the front
facing -y (vaegan_utils.render, meshes voxelized by data_tools.meshes). The framing of those meshes and of
the IKEA library, which the benchmark scores voxel by voxel: the shape's longest side spans the grid and its
bounding box is centred on every axis (all 225 IKEA models: longest side 20 of 20, margins equal within a voxel).

Voxel files record neither. Checked on the real files in ../shared/data by rendering them and measuring
(docs/data.md, docs/modelnet_npz_orientation.png): modelnet10-32-train.npz, modelnet10-bed-64.npz and
modelnet10-chair-32.npy.gz are all stored z up, fronts towards -y where ModelNet's meshes have them
there (chairs, beds, toilets), so the default up axis is z. Their framings differ: the 32^3 files are
centred and mostly span the grid (86% and 99.5% of the shapes), the 64^3 beds sit in a corner of theirs;
fitting gives all three the IKEA framing, so `fit` is the default.
Nor do a file's classes face the IKEA library's way: `turned` turns a class about the up axis
(data_tools.ikea_renders --shape_turns).
"""

import numpy as np

from vaegan_utils.resample import stretch

UP_AXES = ("x", "y", "z")
FRAMINGS = ("fit", "stored")


def upright(grid, up_axis):
    """A grid stored with `up_axis` up, that axis swapped with z (z: unchanged). Swapping mirrors the
    shape; where its front then faces is for renders of the file to tell."""
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {', '.join(UP_AXES)}, got {up_axis!r}")
    return np.swapaxes(grid, UP_AXES.index(up_axis), 2)


def fit(grid):
    """The shape refitted to its grid: its longest side spanning it, centred on every axis (bool)."""
    return stretch(grid, (1.0, 1.0, 1.0), len(grid))


def to_frame(grid, up_axis="z", framing="fit"):
    """A stored grid in the project's frame, turned by `up_axis` and, with framing `fit`, refitted."""
    grid = upright(np.asarray(grid), up_axis)
    return fit(grid) if framing == "fit" else grid


def turned(grid, quarter_turns):
    """`grid` ([x, y, z], z up) turned about z by `quarter_turns` quarter turns, counter-clockwise seen from
    above: one turn takes what lies towards +x to +y, +y to -x, -x to -y and -y to +x (np.rot90 from axis 0
    towards axis 1); negative turns go the other way."""
    return np.ascontiguousarray(np.rot90(grid, quarter_turns, axes=(0, 1)))
