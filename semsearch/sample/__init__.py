"""A small embedded sample of real COCO images, like ``skimage.data``: works with no data folder.

154 COCO 2017 images whose Flickr licence allows redistribution (Attribution,
Attribution-ShareAlike, Attribution-NonCommercial, Attribution-NonCommercial-ShareAlike),
as thumbnails of at most 320 px, with their 5 or so captions each, their EfficientNet-Lite0
descriptors (1280-d, computed from the *original* full-size images, as ``semsearch
index`` describes a user's photos) and a model trained on them whose IDF was fitted on all
25,014 val2017 captions. ``ATTRIBUTION.csv`` names each image's Flickr page and licence.
Built by ``scripts/build_sample.py --data DIR``.

Example
-------
>>> from semsearch import sample
>>> data = sample.load()
>>> len(data.image_ids), data.descriptors.dim
(154, 1280)
>>> sorted(p.name for p in sample.image_dir().iterdir())[:2]
['000000000139.jpg', '000000000790.jpg']
"""
from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent


def image_dir() -> Path:
    """The folder of thumbnails, ``<12-digit COCO id>.jpg``."""
    return HERE / "images"


def captions_file() -> Path:
    """The sample's captions, COCO format (with ``licenses`` and each image's ``flickr_url``)."""
    return HERE / "captions.json"


def descriptors_file() -> Path:
    """EfficientNet-Lite0 descriptors of the original images (``semsearch-descriptors-1`` .npz)."""
    return HERE / "descriptors.npz"


def attribution_file() -> Path:
    """``ATTRIBUTION.csv``: file, coco_id, flickr_url, coco_url, license, license_url per image."""
    return HERE / "ATTRIBUTION.csv"


def model_dir() -> Path:
    """The model bundle trained on the sample (``semsearch.bundle.load_bundle`` reads it)."""
    return HERE / "model"


def load():
    """The sample's captions joined with its descriptors: a :class:`~semsearch.dataset.CaptionedImages`."""
    from semsearch.coco import CocoCaptions
    from semsearch.dataset import join
    from semsearch.descriptors import Descriptors

    return join(CocoCaptions.load(captions_file()), Descriptors.load(descriptors_file()), warn=False)


def text_encoder(glove=None):
    """The shipped model's IDF-GloVe ``se_text`` (word weights over 25,014 val2017 captions)."""
    from semsearch.encoders import load_text_encoder

    return load_text_encoder(model_dir() / "text.json", glove)
