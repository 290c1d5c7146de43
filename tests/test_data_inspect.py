"""`python -m data_tools inspect`: summary, verification of every record, contact sheet, one-line failures."""

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from data_tools.convert import convert
from data_tools.inspect_dataset import InspectError, inspect
from data_tools.sources import Settings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IKEA = os.path.join(ROOT, "..", "shared", "data", "ikea-sample")


@pytest.fixture(scope="module")
def ikea(tmp_path_factory):
    out = tmp_path_factory.mktemp("ikea") / "out"
    convert(Settings(source="ikea", input_path=IKEA, out_dir=str(out)), ("DirectRunner", 1, "in_memory", ""))
    return out


def copy_of(folder, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(folder, target)
    return target


def test_inspect_summarizes_verifies_and_pictures(ikea):
    lines = inspect(str(ikea), samples=6)
    assert lines[0].startswith("dataset: ikea (benchmark)")
    assert "verified 60 records in 3 shards: OK" in lines
    sheet = np.asarray(Image.open(ikea / "contact_sheet.png"))
    assert sheet.shape[0] > 5 * 96 and sheet.shape[1] == 2 * 96 + 1
    assert sheet.std() > 20


def test_flipped_byte_in_a_shard_names_the_shard(ikea, tmp_path):
    folder = copy_of(ikea, tmp_path)
    manifest = json.load(open(folder / "manifest.json"))
    shard = folder / manifest["shards"]["train"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(InspectError, match=f"{shard}: content hash differs"):
        inspect(str(folder))
    manifest["shards"]["train"][0]["sha256"] = __import__("hashlib").sha256(bytes(data)).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InspectError, match=f"{shard}: corrupt TFRecord"):
        inspect(str(folder))


def test_missing_shard_or_manifest_is_named(ikea, tmp_path):
    folder = copy_of(ikea, tmp_path)
    manifest = json.load(open(folder / "manifest.json"))
    os.remove(folder / manifest["shards"]["val"][0]["file"])
    with pytest.raises(InspectError, match="val.tfrecord-00000-of-00001: missing"):
        inspect(str(folder))
    os.remove(folder / "manifest.json")
    with pytest.raises(InspectError, match="no manifest.json, so not a finished dataset"):
        inspect(str(folder))
    with pytest.raises(InspectError, match="not a directory"):
        inspect(str(folder / "nothing"))
