"""The embedded sample: what ships, its licences, and its model (no data folder needed)."""
from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from semsearch import sample
from semsearch.bundle import load_bundle, read_info
from semsearch.descriptors import Descriptors
from semsearch.common.keys import coco_file_name
from semsearch.text import tokenize

ALLOWED = {"Attribution License", "Attribution-ShareAlike License", "Attribution-NonCommercial License",
           "Attribution-NonCommercial-ShareAlike License"}


def test_images_are_small_thumbnails_with_captions_and_attribution():
    files = sorted(sample.image_dir().glob("*.jpg"))
    assert len(files) == 154
    assert sum(f.stat().st_size for f in files) <= 5_000_000
    for f in files:
        with Image.open(f) as image:
            assert max(image.size) <= 320 and min(image.size) > 50
    coco = json.loads(sample.captions_file().read_text(encoding="utf-8"))
    licences = {lic["id"]: lic["name"] for lic in coco["licenses"]}
    assert {coco_file_name(e["id"]) for e in coco["images"]} == {f.name for f in files}
    assert all(licences[e["license"]] in ALLOWED for e in coco["images"])  # no NoDerivs image
    per_image = np.bincount([a["image_id"] for a in coco["annotations"]])
    assert all(per_image[e["id"]] >= 5 for e in coco["images"])
    with open(sample.attribution_file(), encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {r["file"] for r in rows} == {f.name for f in files}
    by_id = {e["id"]: e for e in coco["images"]}
    for r in rows:
        assert r["flickr_url"] == by_id[int(r["coco_id"])]["flickr_url"].strip() and r["license"] in ALLOWED


def test_load_joins_captions_and_descriptors_of_the_backbone():
    data = sample.load()
    assert len(data.image_ids) == 154 and len(data.captions.caption_ids) >= 770
    assert data.descriptors.dim == 1280 and data.descriptors.backbone_info["backbone"] == "efficientnet-lite0"
    assert np.isfinite(data.descriptors.vectors).all() and (data.descriptors.vectors >= 0).all()  # ReLU6 output


def test_descriptors_are_those_of_the_original_images(real_data):
    """Made by the package's own backbone; the shared pickle was made by the same network."""
    shipped = Descriptors.load(sample.descriptors_file())
    reference = Descriptors.load(real_data / "descriptors" / "effnet_lite0_coco_mini.pkl")
    np.testing.assert_allclose(shipped.vectors, reference.vectors_of(shipped.ids), atol=1e-5)


def test_model_is_small_knows_everyday_words_and_searches_the_sample():
    folder = sample.model_dir()
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 3_000_000
    info = read_info(folder)
    assert info["info"]["backbone"] == "efficientnet-lite0" and info["input_dim"] == 1280
    model, text_encoder, database = load_bundle(folder)
    sample_words = {w for t in sample.load().captions.captions(sample.load().captions.caption_ids) for w in tokenize(t)}
    for word in ("umbrella", "giraffe", "surfboard"):  # in val2017's captions
        assert text_encoder.known_words(word) == [word]
    assert len(text_encoder.vocabulary) > 3 * len(sample_words)
    keys, scores = database.query("a dog", k=5)
    assert set(keys.tolist()) <= set(sample.load().image_ids.tolist()) and np.all(np.diff(scores) <= 0)
