"""Procedural furniture of the six IKEA classes, voxelized like ShapeNet models.

Every class is a list of parts: axis-aligned boxes, or vertical cylinders
inscribed in a box ("round" parts), with random proportions in metres. The
parts are scaled so the longest side spans the grid less one voxel on each
side, centred horizontally and standing on the floor. Grids are indexed
[x, y, z]: z (axis 2) up with index 0 the floor, the front facing -y (the
layout of vaegan_utils.render and of the ModelNet voxels in ../shared/data).
`variety` below 1 pulls every random draw towards the middle of its range, so
the shapes of a class differ less (an easier set: the demo's).
"""

import numpy as np

CLASSES = ("bed", "bookcase", "chair", "desk", "sofa", "table")


def _box(x0, x1, y0, y1, z0, z1, rounded=False):
    """A part: corners (lo, hi) in metres, and whether it is a vertical cylinder."""
    return np.array([x0, y0, z0], float), np.array([x1, y1, z1], float), rounded


def _flip(part):
    """The mirror image of a part across the x = 0 plane."""
    lo, hi, rounded = part
    return np.array([-hi[0], lo[1], lo[2]]), np.array([-lo[0], hi[1], hi[2]]), rounded


def _mirror(parts):
    """The parts plus their mirror images across the x = 0 plane."""
    return list(parts) + [_flip(part) for part in parts]


def _legs(half_width, y0, y1, size, z1, inset=0.0, rounded=False):
    """Four legs of square section `size` from the floor to z1, at the corners of a footprint."""
    x = half_width - inset - size
    front = _box(x, x + size, y0 + inset, y0 + inset + size, 0, z1, rounded)
    back = _box(x, x + size, y1 - inset - size, y1 - inset, 0, z1, rounded)
    return _mirror([front, back])


def _chair(rng):
    """A seat on four legs, a panel, railed or slatted back, sometimes thin arm rests."""
    width, depth = rng.uniform(0.42, 0.56), rng.uniform(0.40, 0.52)
    seat, seat_thick = rng.uniform(0.42, 0.50), rng.uniform(0.04, 0.08)
    leg, back_thick = rng.uniform(0.035, 0.06), rng.uniform(0.03, 0.06)
    top = seat + rng.uniform(0.38, 0.55)
    half = width / 2
    parts = [_box(-half, half, 0, depth, seat - seat_thick, seat)]
    parts += _legs(half, 0, depth, leg, seat - seat_thick, rng.uniform(0, 0.03), rng.random() < 0.3)
    style = rng.integers(3)
    if style == 0:  # solid back panel
        parts.append(_box(-half, half, depth - back_thick, depth, seat, top))
    else:  # two posts, a top rail, and rails (style 1) or slats (style 2)
        parts += _mirror([_box(half - leg, half, depth - back_thick, depth, seat, top)])
        parts.append(_box(-half, half, depth - back_thick, depth, top - rng.uniform(0.08, 0.15), top))
        if style == 1:
            parts.append(_box(-half, half, depth - back_thick, depth, seat + 0.12, seat + 0.16))
        else:
            for x in np.linspace(-half, half, rng.integers(4, 7))[1:-1]:
                parts.append(_box(x - 0.015, x + 0.015, depth - back_thick, depth, seat, top))
    if rng.random() < 0.25:  # thin arm rests on posts
        arm_top = seat + rng.uniform(0.18, 0.25)
        parts += _mirror([
            _box(half - 0.04, half, 0.02, 0.06, seat, arm_top),
            _box(half - 0.05, half, 0.0, depth, arm_top - 0.04, arm_top),
        ])
    return parts


def _sofa(rng):
    """A long bulky base with a seat cushion, a thick back and two arms, on short legs or a plinth."""
    width, depth = rng.uniform(1.5, 2.2), rng.uniform(0.8, 0.95)
    legs, seat = rng.choice([0.0, rng.uniform(0.06, 0.12)]), rng.uniform(0.40, 0.46)
    back_top, back_thick = rng.uniform(0.75, 0.9), rng.uniform(0.16, 0.25)
    arm_width, arm_top = rng.uniform(0.12, 0.22), rng.uniform(0.55, 0.68)
    half = width / 2
    inner = half - arm_width
    parts = [
        _box(-half, half, 0.0, depth, legs, seat - 0.12),  # base
        _box(-inner, inner, 0.0, depth, seat - 0.12, seat),  # seat cushion
        _box(-half, half, depth - back_thick, depth, legs, back_top),  # back
    ]
    parts += _mirror([_box(inner, half, 0.0, depth, legs, arm_top)])
    if rng.random() < 0.5:  # back cushions
        parts.append(_box(-inner, inner, depth - back_thick - 0.12, depth - back_thick, seat, back_top - 0.06))
    if legs:
        parts += _legs(half, 0.0, depth, 0.06, legs, 0.03)
    return parts


def _bed(rng):
    """A frame and mattress, a tall headboard at the back, pillows, sometimes a low footboard."""
    width, length = rng.uniform(0.95, 1.7), rng.uniform(1.95, 2.15)
    frame, mattress = rng.uniform(0.2, 0.35), rng.uniform(0.15, 0.25)
    head_thick = rng.uniform(0.04, 0.08)
    half, lying, bedding = width / 2, length - head_thick, frame + mattress
    parts = [
        _box(-half, half, 0.0, lying, rng.choice([0.0, 0.12]), frame),  # frame on a plinth or on legs
        _box(-half + 0.03, half - 0.03, 0.03, lying, frame, bedding),  # mattress
        _box(-half - 0.03, half + 0.03, lying, length, 0.0, bedding + rng.uniform(0.45, 0.8)),  # headboard
    ]
    parts += _legs(half, 0.0, lying, 0.07, frame)
    if rng.random() < 0.5:  # a footboard, lower than the headboard
        parts.append(_box(-half - 0.03, half + 0.03, 0.0, head_thick, 0.0, bedding + rng.uniform(0.05, 0.25)))
    pillow = (bedding, bedding + 0.12)
    if width > 1.3:
        parts += _mirror([_box(0.05, half - 0.08, lying - 0.4, lying - 0.05, *pillow)])
    else:
        parts.append(_box(-half + 0.1, half - 0.1, lying - 0.4, lying - 0.05, *pillow))
    return parts


def _bookcase(rng):
    """A tall open box (sides, top, plinth, back panel) with evenly spaced shelves."""
    width, depth, height = rng.uniform(0.6, 1.2), rng.uniform(0.28, 0.42), rng.uniform(1.2, 2.0)
    board, plinth = rng.uniform(0.02, 0.04), rng.uniform(0.05, 0.1)
    half = width / 2
    parts = _mirror([_box(half - board, half, 0, depth, 0, height)])
    parts += [
        _box(-half, half, 0, depth, height - board, height),
        _box(-half, half, 0, depth, 0, plinth),
        _box(-half, half, depth - board, depth, 0, height),
    ]
    for z in np.linspace(plinth, height - board, rng.integers(4, 8))[1:-1]:
        parts.append(_box(-half, half, 0, depth, z, z + board))
    if width > 0.9 and rng.random() < 0.5:  # a middle divider
        parts.append(_box(-board / 2, board / 2, 0, depth, plinth, height))
    return parts


def _desk(rng):
    """A top over a drawer pedestal on one side and a panel or two legs on the other, a modesty panel."""
    width, depth, height = rng.uniform(1.0, 1.6), rng.uniform(0.55, 0.8), rng.uniform(0.72, 0.78)
    top, pedestal = rng.uniform(0.03, 0.05), rng.uniform(0.35, 0.45)
    half = width / 2
    under = height - top
    parts = [
        _box(-half, half, 0, depth, under, height),
        _box(half - pedestal, half, 0.03, depth, 0, under),  # drawer pedestal on the right
        _box(-half + 0.05, half, depth - 0.05, depth - 0.02, under * 0.35, under),  # modesty panel
    ]
    drawers = rng.integers(2, 5)
    for z in (np.arange(drawers) + 0.5) * under / drawers:
        parts.append(_box(half - pedestal / 2 - 0.07, half - pedestal / 2 + 0.07, 0.0, 0.03, z - 0.015, z + 0.015))
    if rng.random() < 0.5:
        parts.append(_box(-half, -half + 0.05, 0.0, depth, 0, under))  # side panel
    else:
        parts += [_box(-half, -half + 0.05, y, y + 0.05, 0, under) for y in (0.02, depth - 0.07)]
    if rng.random() < 0.5:
        parts = [_flip(part) for part in parts]  # pedestal on the left
    return parts


def _table(rng):
    """A top on four legs (dining or coffee table, maybe an apron or a lower shelf) or a round pedestal table."""
    style = rng.integers(3)
    if style == 1:  # round top on a pedestal
        diameter, height = rng.uniform(0.8, 1.2), rng.uniform(0.72, 0.76)
        radius, foot = diameter / 2, rng.uniform(0.25, 0.35)
        column = rng.uniform(0.06, 0.1)
        return [
            _box(-radius, radius, -radius, radius, height - 0.04, height, True),
            _box(-column, column, -column, column, 0, height, True),
            _box(-foot, foot, -foot, foot, 0, 0.05, True),
        ]
    low = style == 2  # coffee table
    width, depth = rng.uniform(1.0, 1.3) if low else rng.uniform(1.2, 1.8), rng.uniform(0.5, 1.0)
    height, top = rng.uniform(0.4, 0.5) if low else rng.uniform(0.72, 0.76), rng.uniform(0.03, 0.06)
    leg, inset = rng.uniform(0.05, 0.08), rng.uniform(0.02, 0.08)
    half = width / 2
    parts = [_box(-half, half, 0, depth, height - top, height)]
    parts += _legs(half, 0, depth, leg, height - top, inset, rng.random() < 0.3)
    if low and rng.random() < 0.6:
        parts.append(_box(-half + inset, half - inset, inset, depth - inset, 0.1, 0.13))  # lower shelf
    elif rng.random() < 0.5:
        x, y0, y1 = half - inset, inset, depth - inset
        parts += [_box(-x, x, y, y + 0.03, height - top - 0.08, height - top) for y in (y0, y1 - 0.03)]  # apron
    return parts


_BUILDERS = {"bed": _bed, "bookcase": _bookcase, "chair": _chair, "desk": _desk, "sofa": _sofa, "table": _table}


def _cells(lo, hi, resolution):
    """Index ranges [start, stop) per axis of the voxels whose centres lie in [lo, hi].

    A part thinner than a voxel along an axis takes the voxel holding its middle.
    """
    start, stop = np.ceil(lo - 0.5).astype(int), np.ceil(hi - 0.5).astype(int)
    thin = stop <= start
    start[thin] = np.floor((lo + hi)[thin] / 2).astype(int)
    stop[thin] = start[thin] + 1
    return np.clip(start, 0, resolution - 1), np.clip(stop, 1, resolution)


def _disc(lo, hi, resolution):
    """Bool (R, R): voxel columns inside the ellipse inscribed in [lo, hi] in x and y (never empty)."""
    centres = np.arange(resolution) + 0.5
    middle, radius = (lo + hi) / 2, np.maximum((hi - lo) / 2, 0.5)
    disc = ((centres[:, None] - middle[0]) / radius[0]) ** 2 + ((centres - middle[1]) / radius[1]) ** 2 <= 1
    disc[tuple(np.clip(middle[:2], 0, resolution - 1).astype(int))] = True
    return disc


def _voxelize(parts, resolution):
    """Fills the parts into a bool grid: longest side = R - 2 voxels, centred, on the floor."""
    lows = np.min([lo for lo, _, _ in parts], axis=0)
    highs = np.max([hi for _, hi, _ in parts], axis=0)
    scale = (resolution - 2) / np.max(highs - lows)
    shift = np.array([resolution / 2, resolution / 2, 0.0]) - scale * np.array([*(lows + highs)[:2] / 2, lows[2]])
    grid = np.zeros((resolution,) * 3, bool)
    for lo, hi, rounded in parts:
        lo, hi = lo * scale + shift, hi * scale + shift
        start, stop = _cells(lo, hi, resolution)
        if rounded:
            grid[:, :, start[2]:stop[2]] |= _disc(lo, hi, resolution)[:, :, None]
        else:
            grid[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]] = True
    return grid


class _Narrowed:
    """The draws the builders make (uniform, random, integers, choice), each from a uniform u pulled
    towards 0.5 by the factor `variety`: 0 gives every shape of a class the middle proportions and styles."""

    def __init__(self, rng, variety):
        self.rng, self.variety = rng, variety

    def random(self):
        return 0.5 + self.variety * (self.rng.random() - 0.5)

    def uniform(self, low, high):
        return low + self.random() * (high - low)

    def integers(self, low, high=None):
        low, high = (0, low) if high is None else (low, high)
        return min(low + int(self.random() * (high - low)), high - 1)

    def choice(self, options):
        return options[self.integers(len(options))]


def make_shape(class_name, resolution, rng, variety=1.0):
    """A random solid shape of `class_name` as a bool grid (R, R, R), drawn from `rng`; `variety` in
    [0, 1] narrows the draws (1: the full ranges, the same shapes as without it)."""
    if class_name not in _BUILDERS:
        raise ValueError(f"unknown class {class_name!r}, expected one of {', '.join(CLASSES)}")
    if not 0 <= variety <= 1:
        raise ValueError(f"variety {variety} is not in [0, 1]")
    return _voxelize(_BUILDERS[class_name](rng if variety == 1 else _Narrowed(rng, variety)), resolution)
