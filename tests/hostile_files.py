"""Generated files whose headers lie: counts and sizes a file cannot hold, for every format the readers take.

`hostile_files(rng)` gives (name, extension, bytes) cases, each one a file every reader must refuse by
name without allocating what it claims: lying PLY/STL/OFF/binvox/.npy/.npz/.mat/image headers, negative
and overflowing numbers, truncated bodies, zip bombs. The header builders are shared with test_fuzz.
"""

import gzip
import io
import struct
import zipfile
import zlib

import numpy as np

HUGE_COUNTS = (10**6, 10**7, 10**9, 10**12, 2**31 - 1, 2**32, 2**32 + 7, 2**63 - 1, 2**64 + 5)
def lying_counts(rng, extra):
    """HUGE_COUNTS and `extra` random counts from 10^4 to 10^13."""
    return list(HUGE_COUNTS) + [rng.randrange(10**4, 10**13) for _ in range(extra)]


NOT_COUNTS = ("-1", "-2147483648", "1e9", "0x10", "nan", "9" * 5000, "3.5", "+-3")


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header(width, height):
    """A PNG claiming `width` x `height` pixels whose image data is empty: Pillow reads its size, nothing more."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"") + png_chunk(b"IEND", b"")


def npy_header(shape, descr="|b1"):
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(shape)}, }}"
    header += " " * (118 - len(header)) + "\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode()


def mat_claiming(shape):
    """A MATLAB v5 file whose matrix header claims `shape` (its data is 30 bytes)."""
    import scipy.io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, {"grid": np.zeros((2, 3, 5), np.uint8)})
    return buffer.getvalue().replace(np.array([2, 3, 5], "<i4").tobytes(), np.array(shape, "<i4").tobytes())


# ---------------------------------------------------------------- meshes

PLY_FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")
TETRAHEDRON = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], np.float32)
TETRAHEDRON_FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]], np.int32)


def ply(form, vertices="4", faces="4", vertex_properties=("float x", "float y", "float z"),
        face_property="list uchar int vertex_indices", body=None):
    """A PLY of the tetrahedron whose header says what the arguments say (counts as text, any lie)."""
    lines = ["ply", f"format {form} 1.0", f"element vertex {vertices}"]
    lines += [f"property {p}" for p in vertex_properties]
    lines += [f"element face {faces}", f"property {face_property}", "end_header"]
    return "\n".join(lines).encode() + b"\n" + (ply_body(form) if body is None else body)


def ply_body(form, faces=TETRAHEDRON_FACES):
    """The tetrahedron's vertices and `faces` in the PLY encoding `form`."""
    if form == "ascii":
        rows = [" ".join(f"{v:g}" for v in vertex) for vertex in TETRAHEDRON]
        rows += ["3 " + " ".join(str(i) for i in face) for face in faces]
        return ("\n".join(rows) + "\n").encode()
    order = "<" if form == "binary_little_endian" else ">"
    packed = b"".join(struct.pack(f"{order}B3i", 3, *face) for face in faces)
    return TETRAHEDRON.astype(f"{order}f4").tobytes() + packed


def ply_cases(rng):
    cases = []
    for form in PLY_FORMATS:
        for count in lying_counts(rng, 8):
            cases.append((f"ply-{form}-vertices-{count}", "ply", ply(form, vertices=str(count))))
            cases.append((f"ply-{form}-faces-{count}", "ply", ply(form, faces=str(count))))
        for word in NOT_COUNTS:
            cases.append((f"ply-{form}-count-{word[:12]}", "ply", ply(form, vertices=word)))
        cases += [
            (f"ply-{form}-no-properties", "ply", ply(form, vertices="1000000000", vertex_properties=())),
            (f"ply-{form}-unknown-type", "ply", ply(form, vertex_properties=("int128 x", "float y", "float z"))),
            (f"ply-{form}-unknown-list-type", "ply", ply(form, face_property="list uchar quad vertex_indices")),
            (f"ply-{form}-comment-spam", "ply", ply(form).replace(b"end_header", b"comment " + b"x" * 70000
                                                                  + b"\nend_header")),
            (f"ply-{form}-no-end-header", "ply", ply(form).replace(b"end_header", b"end_heater")),
            (f"ply-{form}-index-out-of-range", "ply", ply(form, body=ply_body(form, [[0, 1, 2], [0, 1, 2**31 - 1]])
                                                          ).replace(b"face 4", b"face 2")),
        ]
        header = ply(form, body=b"")
        minimum = 4 * (6 if form == "ascii" else 12) + 4 * (2 if form == "ascii" else 1)
        cases += [(f"ply-{form}-cut-header", "ply", header[: rng.randrange(3, len(header) - 1)]) for _ in range(2)]
        cases += [(f"ply-{form}-cut-body", "ply", ply(form)[: len(header) + rng.randrange(0, minimum - 1)])
                  for _ in range(3)]
    cases.append(("ply-format-unknown", "ply", ply("binary_middle_endian")))
    cases.append(("ply-no-format", "ply", ply("ascii").replace(b"format ascii 1.0\n", b"")))
    return cases


def binary_stl(triangles, claimed=None, extra=b""):
    """A binary STL of `triangles` (n, 3, 3) whose count field says `claimed` (default: the truth)."""
    count = len(triangles) if claimed is None else claimed
    body = b"".join(struct.pack("<3f", 0, 0, 1) + np.asarray(t, "<f4").tobytes() + b"\0\0" for t in triangles)
    return b"binary stl".ljust(80, b" ") + struct.pack("<I", count % 2**32) + body + extra


def stl_cases(rng):
    triangles = TETRAHEDRON[TETRAHEDRON_FACES]
    cases = [(f"stl-claims-{count}", "stl", binary_stl(triangles, count)) for count in lying_counts(rng, 12)]
    cases += [(f"stl-claims-{n}-holds-4", "stl", binary_stl(triangles, n)) for n in rng.sample(range(5, 5000), 6)]
    cases += [(f"stl-claims-4-holds-more-{k}", "stl", binary_stl(triangles, extra=b"\0" * k)) for k in (1, 49, 51)]
    cases += [(f"stl-short-{k}", "stl", b"\x01" * k) for k in (0, 1, 40, 83)]
    nan = triangles.copy()
    nan[0, 0, 0] = np.nan
    cases += [("stl-nan", "stl", binary_stl(nan)), ("stl-inf", "stl", binary_stl(np.where(nan == nan, nan, np.inf))),
              ("stl-degenerate", "stl", binary_stl(np.zeros((4, 3, 3))))]
    ascii_stl = (b"solid t\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0 0\nvertex 0 1 0\n"
                 b"endloop\nendfacet\n")
    cases += [(f"stl-ascii-cut-{k}", "stl", ascii_stl[:k]) for k in (5, 30, 60, 75)]
    cases.append(("stl-ascii-nonsense", "stl", b"solid t\nfacet normal x y z\nvertex 1e999999 nan 0\n"))
    return cases


def obj_cases(rng):
    vertices = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\n"
    cases = [(f"obj-index-{index}", "obj", f"{vertices}f 1 2 {index}\n".encode())
             for index in ("5", "-5", "0", "2147483648", "99999999999999999999", "1e9", "x")]
    cases += [("obj-no-faces", "obj", vertices.encode()), ("obj-no-vertices", "obj", b"f 1 2 3\n"),
              ("obj-inf", "obj", b"v 1e999 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"),
              ("obj-nan", "obj", b"v nan 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")]
    cases += [(f"obj-cut-{k}", "obj", f"{vertices}f 1 2 3\n".encode()[:k]) for k in rng.sample(range(1, 30), 4)]
    return cases


def off_cases(rng):
    cases = []
    for count in lying_counts(rng, 6):
        cases.append((f"off-vertices-{count}", "off", f"OFF\n{count} 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n".encode()))
        cases.append((f"off-faces-{count}", "off", f"OFF\n3 {count} 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n".encode()))
        cases.append((f"off-polygon-{count}", "off", f"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n{count} 0 1 2\n".encode()))
        cases.append((f"off-index-{count}", "off", f"OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 {count}\n".encode()))
    for word in NOT_COUNTS:
        cases.append((f"off-count-{word[:12]}", "off", f"OFF\n{word} 1 0\n0 0 0\n3 0 0 0\n".encode()))
    whole = b"OFF\n4 4 0\n0 0 0\n1 0 0\n0 1 0\n0 0 1\n3 0 2 1\n3 0 1 3\n3 0 3 2\n3 1 2 3\n"
    cases += [(f"off-cut-{k}", "off", whole[:k]) for k in rng.sample(range(4, len(whole) - 2), 5)]
    return cases


# ---------------------------------------------------------------- voxel files


def binvox(dims, body=b"\x01\xff"):
    return f"#binvox 1\ndim {dims}\ntranslate 0 0 0\nscale 1\ndata\n".encode() + body


def binvox_cases(rng):
    cases = [(f"binvox-dims-{count}", "binvox", binvox(f"{count} {count} {count}")) for count in lying_counts(rng, 8)]
    cases += [(f"binvox-dims-{n}-cut", "binvox", binvox(f"{n} {n} {n}", b"\x01\xff" * rng.randrange(1, 20)))
              for n in rng.sample(range(20, 2000), 16)]
    cases += [(f"binvox-dims-{word[:12]}", "binvox", binvox(f"{word} 32 32")) for word in NOT_COUNTS]
    cases += [("binvox-dims-0", "binvox", binvox("0 0 0")), ("binvox-two-dims", "binvox", binvox("32 32")),
              ("binvox-odd-bytes", "binvox", binvox("2 2 2", b"\x01\x08\x00")),
              ("binvox-value-7", "binvox", binvox("2 2 2", b"\x07\x08")),
              ("binvox-no-data", "binvox", b"#binvox 1\ndim 32 32 32\n"),
              ("binvox-version-2", "binvox", binvox("2 2 2").replace(b"#binvox 1", b"#binvox 2"))]
    return cases


def npy_cases(rng):
    cases = [(f"npy-grids-{count}", "npy", npy_header((count, 32, 32, 32)) + b"\0" * 64)
             for count in lying_counts(rng, 8)]
    cases += [(f"npy-edge-{edge}", "npy", npy_header((1, edge, edge, edge), "<f8")) for edge in (1024, 10**5, 2**21)]
    cases += [(f"npy-cut-{k}", "npy", npy_header((4, 8, 8, 8)) + b"\1" * k) for k in rng.sample(range(0, 2048), 10)]
    cases += [(f"npy-shape-{shape}", "npy", npy_header(shape)) for shape in ((-1, 4, 4, 4), (0, 0, 0), (4, -4, -4, -4))]
    cases += [(f"npy-dtype-{descr}", "npy", npy_header((1, 4, 4, 4), descr)) for descr in ("|O", "<U10", "|V8", "<c16")]
    long_header = b"\x93NUMPY\x01\x00\xff\xff{'descr': '|b1'"
    cases.append(("npy-header-length-lie", "npy", long_header))
    for count in rng.sample(HUGE_COUNTS[:7], 4):
        cases.append((f"npy.gz-grids-{count}", "npy.gz", gzip.compress(npy_header((count, 32, 32, 32), "<f8")
                                                                        + bytes(1 << 16))))
    bomb = gzip.compress(npy_header((1024, 32, 32, 32), "<f8") + bytes(1 << 26))  # claims 4 times what it holds
    cases += [("npy.gz-bomb", "npy.gz", bomb), ("npy.gz-cut", "npy.gz", bomb[: len(bomb) // 2])]
    return cases


def _npz(members, compression=zipfile.ZIP_DEFLATED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _claim_uncompressed_size(archive, size):
    """The zip with every member's uncompressed size (local and central headers) replaced by `size`."""
    patched = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = patched.find(signature)
        while start >= 0:
            patched[start + offset : start + offset + 4] = struct.pack("<I", size)
            start = patched.find(signature, start + 4)
    return bytes(patched)


def npz_cases(rng):
    voxels = np.zeros((4, 8, 8, 8), np.uint8)
    labels = np.arange(4, dtype=np.uint8) % 2
    names = np.array(["a", "b"])
    good = {"voxels.npy": _npy(voxels), "labels.npy": _npy(labels), "class_names.npy": _npy(names)}
    cases = [(f"npz-claims-{size}", "npz", _claim_uncompressed_size(_npz(good), size))
             for size in (2**32 - 1, 2**31, 10**9, 10**8, 10**7) + tuple(rng.sample(range(10**5, 10**7), 3))]
    for count in rng.sample(lying_counts(rng, 6), 10):
        lie = dict(good, **{"voxels.npy": npy_header((count, 8, 8, 8), "|u1") + bytes(voxels.size)})
        cases.append((f"npz-shape-{count}", "npz", _npz(lie)))
        cases.append((f"npz-stored-shape-{count}", "npz", _npz(lie, zipfile.ZIP_STORED)))
    cases += [
        ("npz-member-not-npy", "npz", _npz(dict(good, **{"voxels.npy": b"not an array"}))),
        ("npz-object-member", "npz", _npz(dict(good, **{"labels.npy": _npy(np.array([None, 1], object))}))),
        ("npz-cut", "npz", _npz(good)[:300]),
        ("npz-not-zip", "npz", b"PK\x05\x06" + b"\0" * 18),
        ("npz-many-members", "npz", _npz({f"m{i}.npy": _npy(np.zeros(1, np.uint8)) for i in range(2000)})),
    ]
    return cases


def mat_cases(rng):
    shapes = [(4096, 4096, 4096), (2**31 - 1, 1, 1), (65536, 65536, 1), (1, 1, 10**9)]
    shapes += [tuple(rng.randrange(300, 5000) for _ in range(3)) for _ in range(10)]
    cases = [(f"mat-claims-{'x'.join(map(str, shape))}", "mat", mat_claiming(shape)) for shape in shapes]
    cases += [(f"mat-negative-{k}", "mat", mat_claiming((-k, 4, 4))) for k in (1, 2**31)]
    whole = mat_claiming((2, 3, 5))
    cases += [(f"mat-cut-{k}", "mat", whole[:k]) for k in rng.sample(range(10, len(whole) - 2), 4)]
    return cases


def hdf5_mat_unwritten(shape):
    """A MATLAB v7.3 (HDF5) file whose variable claims `shape` but stores no data (all fill value)."""
    import h5py

    buffer = io.BytesIO()
    with h5py.File(buffer, "w", userblock_size=512) as f:
        f.create_dataset("grid", shape=shape, dtype="u1", chunks=True)
    data = buffer.getvalue()
    return b"MATLAB 7.3 MAT-file".ljust(128, b" ") + data[128:]


# ---------------------------------------------------------------- images


def jpeg_claiming(width, height):
    """A real 16x16 JPEG whose frame header claims `width` x `height`."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 30, 30)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def gif_claiming(width, height):
    """A GIF whose screen and one image claim `width` x `height`, with an empty image."""
    size = struct.pack("<HH", width, height)
    return b"GIF89a" + size + b"\x00\x00\x00" + b"," + b"\x00\x00\x00\x00" + size + b"\x00\x02\x00;"


def bmp_claiming(width, height):
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + info


def image_cases(rng):
    sizes = [(100000, 100000), (65535, 65535), (9000, 9000), (2**31 - 1, 1), (1, 2**31 - 1), (7072, 7072)]
    sizes += [(rng.randrange(7100, 65535), rng.randrange(7100, 65535)) for _ in range(10)]
    cases = []
    for width, height in sizes:
        cases.append((f"png-{width}x{height}", "png", png_header(width, height)))
        jpeg_size = (width % 65536 or 1, height % 65536 or 1)  # a JPEG frame holds 16-bit sizes
        cases.append((f"jpg-{jpeg_size[0]}x{jpeg_size[1]}", "jpg", jpeg_claiming(*jpeg_size)))
        cases.append((f"gif-{width % 65536}x{height % 65536}", "gif", gif_claiming(width % 65536, height % 65536)))
        cases.append((f"bmp-{width}x{height}", "bmp", bmp_claiming(width, height)))
    cases += [(f"bmp-negative-{k}", "bmp", bmp_claiming(-k, -k)) for k in (1, 2**31 - 1)]
    cases += [("png-0x0", "png", png_header(0, 0)), ("png-2^32-1", "png", png_header(2**32 - 1, 2**32 - 1))]
    return cases


def npz_bomb(member_bytes, members):
    """An .npz of `members` arrays of zeros, `member_bytes` each, deflated about 1028:1 (3.6 s per GiB here)."""
    buffer = io.BytesIO()
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(members):
            with archive.open(f"voxels{index or ''}.npy", "w", force_zip64=True) as member:
                member.write(npy_header((member_bytes // len(chunk), len(chunk)), "|u1"))
                for _ in range(member_bytes // len(chunk)):
                    member.write(chunk)
    return buffer.getvalue()


FAMILIES = (ply_cases, stl_cases, obj_cases, off_cases, binvox_cases, npy_cases, npz_cases, mat_cases, image_cases)


def hostile_files(rng, bombs=False):
    """(name, extension, bytes) of every family, seeded by `rng` (a random.Random); with `bombs`, also .npz
    files that really inflate past the 1 GiB limit (seconds to build)."""
    cases = [case for family in FAMILIES for case in family(rng)]
    cases += [(f"mat-v73-unwritten-{n}", "mat", hdf5_mat_unwritten((n, n, n))) for n in (1024, 800, 512)]
    if bombs:
        cases += [("npz-bomb-2x600MiB", "npz", npz_bomb(600 << 20, 2)),
                  ("npz-bomb-1100MiB", "npz", npz_bomb(1100 << 20, 1))]
    return cases
