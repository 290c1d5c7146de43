"""The IKEA experiment's training set: renders of the real IKEA model library, held-out models, backdrops."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import distinct, figure_cells, foreground_share, in_process
from data_tools import ikea_renders
from data_tools import photos
from data_tools.photos import render_photo
from keras_vaegan import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IKEA = os.path.join(ROOT, "..", "shared", "data", "ikea-sample")


@pytest.fixture(scope="module")
def renders(tmp_path_factory):
    out = tmp_path_factory.mktemp("renders")
    written = ikea_renders.write_ikea_renders(IKEA, str(out), views_per_model=1, synthetic_per_class=1,
                                              heldout_fraction=0.2, image_size=32, num_shards=2)
    records = [data.decode_example(r) for r in tf.data.TFRecordDataset(data.find_records(str(out)))]
    return out, written.records, written.heldout_models, records


def test_every_library_model_but_the_held_out_ones_is_rendered(renders):
    out, count, heldout, records = renders
    assert 225 * 0.1 < len(heldout) < 225 * 0.3
    assert (out / ikea_renders.HELDOUT_FILE).read_text().split() == heldout
    ids = [r["source_id"].numpy().decode() for r in records]
    library = {i.split("/")[2] for i in ids if i.startswith("ikea/models/")}
    assert len(library) == 225 - len(heldout) and not library & set(heldout)
    assert sum(i.startswith("synthetic/") for i in ids) == 6 and count == len(records) == 225 - len(heldout) + 6
    classes = (out / "classes.txt").read_text().split()
    assert classes == ["bed", "bookcase", "chair", "desk", "sofa", "table", "wardrobe"]
    for record in records[:10]:
        assert int(record["resolution"]) == 32 and classes[int(record["class_id"])] == record["class_name"].numpy().decode()
        photo = Image.open(io.BytesIO(record["image"].numpy()))
        assert photo.format == "JPEG" and photo.size == (32, 32)
    preview = [cell for row in figure_cells(out / "preview.png", 96) for cell in row]
    assert len(preview) == ikea_renders.PREVIEW_PHOTOS and distinct(preview) == len(preview)
    assert min(map(foreground_share, preview)) > 0.9  # photos over backdrops fill their cells


def test_held_out_models_and_bytes_depend_only_on_the_arguments(renders, tmp_path):
    out, _, heldout, _ = renders
    assert heldout == sorted(m for m in (f"model{i:04d}" for i in range(1, 226)) if ikea_renders.is_heldout(m, 0.2, 0))
    assert heldout != sorted(m for m in (f"model{i:04d}" for i in range(1, 226)) if ikea_renders.is_heldout(m, 0.2, 1))
    ikea_renders.write_ikea_renders(IKEA, str(tmp_path), views_per_model=1, synthetic_per_class=1,
                                    heldout_fraction=0.2, image_size=32, num_shards=2)
    for name in sorted(os.listdir(out)):
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_the_heldout_split_renders_held_out_models_alone_in_a_folder_of_its_own_with_either_camera(renders, tmp_path):
    out, _, heldout, _ = renders
    written = ikea_renders.write_ikea_renders(IKEA, str(tmp_path), views_per_model=2, heldout_fraction=0.2,
                                              image_size=32, num_shards=2, split="heldout")
    assert written.heldout_models == heldout and written.records == 2 * len(heldout) and not written.heldout_shapes
    shards = sorted(p.name for p in tmp_path.glob("*.tfrecord-*"))
    assert shards == [f"heldout.tfrecord-0000{i}-of-00002" for i in (0, 1)]
    records = [data.decode_example(r) for r in tf.data.TFRecordDataset(data.find_records(str(tmp_path)))]
    ids, ortho_images = [r["source_id"].numpy().decode() for r in records], [r["image"].numpy() for r in records]
    assert sorted({i.split("/")[2] for i in ids}) == heldout and all(i.startswith("ikea/models/") for i in ids)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    for split, folder in (("heldout", out), ("train", tmp_path)):
        with pytest.raises(ValueError, match="already holds other records"):
            ikea_renders.write_ikea_renders(IKEA, str(folder), views_per_model=1, heldout_fraction=0.2,
                                            image_size=32, num_shards=2, split=split)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    ikea_renders.write_ikea_renders(IKEA, str(tmp_path / "pinhole"), views_per_model=2, heldout_fraction=0.2,
                                    image_size=32, num_shards=2, split="heldout", camera_distances=(1.2, 5.0))
    pinhole = [data.decode_example(r) for r in tf.data.TFRecordDataset(data.find_records(str(tmp_path / "pinhole")))]
    assert [r["source_id"].numpy().decode() for r in pinhole] == ids
    assert all(r["image"].numpy() != o for r, o in zip(pinhole, ortho_images))
    with pytest.raises(ValueError, match="none is held out"):
        ikea_renders.write_ikea_renders(IKEA, str(tmp_path / "none"), heldout_fraction=0, split="heldout")


def test_photos_use_the_backdrops_and_the_faults_of_real_photos():
    grid = np.zeros((32, 32, 32), bool)
    grid[10:22, 10:22, 0:20] = True
    backdrop = np.zeros((100, 120, 3), np.uint8)
    backdrop[..., 1] = 255  # pure green
    plain = render_photo(grid, np.random.default_rng(3), 64)
    assert plain == render_photo(grid, np.random.default_rng(3), 64)
    greens = 0
    for seed in range(8):
        pixels = np.asarray(Image.open(io.BytesIO(render_photo(grid, np.random.default_rng(seed), 64, [backdrop]))))
        greens += pixels[0, 0, 1] > 200 and pixels[0, 0, 0] < 60  # the corner shows the backdrop
    assert 0 < greens < 8  # half the backdrops are photos, half procedural
    jittered = render_photo(grid, np.random.default_rng(3), 64, jitter=True)
    assert jittered != plain and Image.open(io.BytesIO(jittered)).size == (64, 64)
    backdrops, skipped = ikea_renders.load_backdrops()
    assert len(backdrops) == len(ikea_renders.SKIMAGE_PHOTOS) and skipped == 0
    pinhole = render_photo(grid, np.random.default_rng(3), 64, camera_distances=(1.2, 5.0))
    assert pinhole == render_photo(grid, np.random.default_rng(3), 64, camera_distances=(1.2, 5.0))
    assert pinhole != plain


def test_boxed_photos_are_padded_with_black_like_photos_at_test_time():
    tall = np.zeros((32, 32, 32), bool)
    tall[12:20, 12:20, 0:30] = True  # a bookcase-like column: a tall box, black bars left and right
    for seed in range(4):
        boxed = render_photo(tall, np.random.default_rng(seed), 64, jitter=True, boxed=True)
        pixels = np.asarray(Image.open(io.BytesIO(boxed)).convert("RGB")).astype(int)
        assert pixels.shape == (64, 64, 3)
        bright = pixels.max(axis=(0, 2)) > 40  # columns showing something other than the black padding
        left, right = np.argmax(bright), 63 - np.argmax(bright[::-1])
        assert 8 < left and right < 55 and abs(left - (63 - right)) <= 2  # centred, with bars on both sides
        assert pixels[:, : left - 4].max() < 32 and pixels[:, right + 5 :].max() < 32  # black but for JPEG ringing
        assert pixels[[0, 63], left + 2 : right - 2].max() > 40  # the long side fills the frame
    square = render_photo(tall, np.random.default_rng(0), 64, jitter=True)
    assert square != render_photo(tall, np.random.default_rng(0), 64, jitter=True, boxed=True)


def test_room_scenes_put_the_object_before_a_light_wall_with_a_shadow_and_a_surface_pattern():
    low = np.zeros((32, 32, 32), bool)
    low[8:24, 8:24, 0:6] = True  # a low bed-like block: the square crop shows the backdrop above it
    walls = 0
    for seed in range(8):
        room = render_photo(low, np.random.default_rng(seed), 64, room=True)
        corner = np.asarray(Image.open(io.BytesIO(room)).convert("RGB")).astype(int)[1, 1]
        walls += corner.min() > 140 and np.ptp(corner) < 60  # an interior wall: light and nearly grey
        assert room == render_photo(low, np.random.default_rng(seed), 64, room=True)
    assert walls == 8
    backdrop, alpha = np.full((40, 40, 3), 200.0), np.zeros((40, 40, 1))
    alpha[10:20, 10:30] = 1.0
    shadowed = photos._shadowed(backdrop, alpha, np.random.default_rng(0))
    assert shadowed[21:24, 12:28].mean() < 190 and shadowed[35:, :].min() > 199  # dark just below, not far off
    flat = np.full((40, 50, 3), 120.0)
    patterned = [photos._textured(flat, np.random.default_rng(seed)) for seed in range(4)]
    assert all(p.shape == flat.shape and abs(p.mean() - 120) < 15 for p in patterned)
    assert max(p.std() for p in patterned) > 5


def test_stretch_varies_the_library_models_proportions_and_leaves_the_procedural_shapes(renders, tmp_path):
    out, _, _, records = renders
    ikea_renders.write_ikea_renders(IKEA, str(tmp_path), views_per_model=1, synthetic_per_class=1,
                                    heldout_fraction=0.2, image_size=32, num_shards=2, stretch_range=0.2)
    stretched = [data.decode_example(r) for r in tf.data.TFRecordDataset(data.find_records(str(tmp_path)))]
    ids = [r["source_id"].numpy().decode() for r in records]
    assert [r["source_id"].numpy().decode() for r in stretched] == ids
    changed = [r["voxels"].numpy() != s["voxels"].numpy() for r, s in zip(records, stretched)]
    library = [i.startswith("ikea/models/") for i in ids]
    assert sum(c for c, lib in zip(changed, library) if lib) > 0.9 * sum(library)
    assert not any(c for c, lib in zip(changed, library) if not lib)
    for record in stretched[:20]:
        grid = data.unpack_voxels(record["voxels"].numpy(), 32)
        cells = np.argwhere(grid)
        assert (cells.max(axis=0) - cells.min(axis=0) + 1).max() >= 31  # refitted: the longest side spans the grid


def test_clutter_sometimes_cuts_into_the_object_and_puts_things_before_it():
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[30:70, 30:70] = 255  # a square object: its visible part stays square unless the frame cuts it

    def visible_aspect(truncate, seed):
        crop = photos._boxed(rgba, np.random.default_rng(seed), 64, truncate=truncate)
        rows, cols = np.nonzero(crop[..., 3] > 128)
        sides = np.ptp(rows) + 1, np.ptp(cols) + 1
        return min(sides) / max(sides)

    assert min(visible_aspect(False, seed) for seed in range(60)) > 0.95
    cut = sum(visible_aspect(True, seed) < 0.93 for seed in range(60))
    assert 8 <= cut <= 35  # about a third of the pictures (TRUNCATED_SHARE), by 5-25% of the object
    thin = np.zeros((100, 100, 4), np.uint8)
    thin[10:90, 45:53] = 255  # a bookcase from the side: a cut of 25% of its height would take all its width
    for seed in range(60):
        crop = photos._boxed(thin, np.random.default_rng(seed), 64, truncate=True)
        rows, cols = np.nonzero(crop[..., 3] > 128)
        scale = 64 / 80 / 1.24  # at least this many pixels per source pixel (margins add at most 24%)
        assert np.ptp(cols) + 1 >= 4 * scale - 1 and np.ptp(rows) + 1 >= 40 * scale - 1  # at most half is cut
    flat = np.full((48, 64, 3), 128.0)
    covered = [np.any(photos._occluded(flat, np.random.default_rng(seed)) != 128.0, axis=-1) for seed in range(20)]
    assert all(mask.any() for mask in covered) and max(mask.mean() for mask in covered) < 0.6
    assert sum(mask[24:].sum() for mask in covered) > sum(mask[:24].sum() for mask in covered)  # mostly below
    again = [photos._occluded(flat, np.random.default_rng(1)) for _ in range(2)]
    assert np.array_equal(*again)
    grid = np.zeros((32, 32, 32), bool)
    grid[8:24, 8:24, 0:8] = True
    cluttered = render_photo(grid, np.random.default_rng(2), 64, jitter=True, boxed=True, room=True, clutter=True)
    assert cluttered == render_photo(grid, np.random.default_rng(2), 64, jitter=True, boxed=True, room=True,
                                     clutter=True)
    assert cluttered != render_photo(grid, np.random.default_rng(2), 64, jitter=True, boxed=True, room=True)


@pytest.mark.parametrize("option", [{"clutter": True}, {"photo_textures": 1.0}], ids=["clutter", "photo_textures"])
def test_clutter_and_photo_textures_change_the_pictures_and_keep_the_shapes(option, renders, tmp_path):
    out, _, _, records = renders
    ikea_renders.write_ikea_renders(IKEA, str(tmp_path), views_per_model=1, synthetic_per_class=1,
                                    heldout_fraction=0.2, image_size=32, num_shards=2, **option)
    changed = [data.decode_example(r) for r in tf.data.TFRecordDataset(data.find_records(str(tmp_path)))]
    assert [r["source_id"].numpy() for r in changed] == [r["source_id"].numpy() for r in records]
    assert all(np.array_equal(r["voxels"].numpy(), c["voxels"].numpy()) for r, c in zip(records, changed))
    assert sum(r["image"].numpy() != c["image"].numpy() for r, c in zip(records, changed)) > 0.9 * len(records)


def test_photo_textures_paint_the_object_with_a_crop_of_a_backdrop_photo_under_its_shading():
    box = np.zeros((32, 32, 32), bool)
    box[8:24, 8:24, 0:16] = True
    green = np.zeros((80, 90, 3), np.uint8)
    green[..., 1] = 200
    green[40:, :, 1] = 100  # a darker lower half: crops differ in brightness, never in hue
    textured = 0
    for seed in range(8):
        picture = render_photo(box, np.random.default_rng(seed), 64, [green], boxed=True, photo_textures=0.5)
        assert picture == render_photo(box, np.random.default_rng(seed), 64, [green], boxed=True, photo_textures=0.5)
        red, green_level, blue = np.asarray(Image.open(io.BytesIO(picture)).convert("RGB")).astype(int)[32, 32]
        textured += red < 30 and blue < 30 and green_level > 40  # the object shows the photo's green
    assert 0 < textured < 8  # half the pictures
    always = [np.asarray(Image.open(io.BytesIO(render_photo(box, np.random.default_rng(seed), 64, [green], boxed=True,
                                                            photo_textures=1.0))).convert("RGB")).astype(int)
              for seed in range(4)]
    assert all(p[32, 32, 0] < 30 and p[32, 32, 1] > 40 for p in always)
    assert max(np.ptp(p[20:44, 20:44, 1]) for p in always) > 30  # shading still shows the faces apart
    colors, flat = np.full((20, 30, 3), 150.0), (150.0, 150.0, 150.0)
    texture = photos._texture([], np.random.default_rng(0), 20, 30)  # without photos: a procedural pattern
    assert texture.shape == (20, 30, 3) and texture.std() > 1
    assert np.allclose(photos._photo_textured(colors, flat, texture), texture)  # full light keeps the texture
    assert np.allclose(photos._photo_textured(colors / 2, flat, texture), texture / 2)


def test_cli_bad_flags_are_one_line(tmp_path, capsys):
    run = in_process(ikea_renders.main, ikea_renders.FLAGS, capsys)
    for args, fragment in (([f"--out={tmp_path}"], "--input is required"),
                           ([f"--input={tmp_path / 'no'}", f"--out={tmp_path}"], "is not a folder"),
                           ([f"--input={tmp_path}", f"--out={tmp_path / 'o'}"], "not an IKEA dataset"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--heldout_fraction=1"], "--heldout_fraction"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--split=test"], "--split"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--framing=tight"], "--framing"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--scene=garden"], "--scene"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--stretch=0.5"], "--stretch"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--clutter=often"], "--clutter"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--photo_textures=1.5"], "--photo_textures"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--camera_distances=2"], "--camera_distances"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--camera_distances=0.5,3"], "LOW <= HIGH"),
                           ([f"--input={IKEA}", f"--out={tmp_path}", "--split=heldout", "--heldout_fraction=0"],
                            "--split: heldout renders no model")):
        result = run(*args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert fragment in result.stderr.strip().splitlines()[-1]
