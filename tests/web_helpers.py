"""Shared by the web tests: a small model folder built from the real data."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def build_real_bundle(real_data: Path, out: Path, epochs: int = 10) -> Path:
    """Train on the 239 real images briefly and save a model folder (about 10 s on 2 cores)."""
    from semsearch.bundle import save_bundle
    from semsearch.coco import CocoCaptions
    from semsearch.database import ImageDatabase
    from semsearch.dataset import join
    from semsearch.descriptors import Descriptors
    from semsearch.model import Autoembedder
    from semsearch.text import TextEmbedder
    from semsearch.training import train

    coco = CocoCaptions.load(real_data / "coco/annotations/captions_val2017.json",
                             real_data / "coco/annotations/captions_train2017_mini.json")
    data = join(coco, Descriptors.load(real_data / "descriptors/effnet_lite0_coco_mini.pkl"), warn=False)
    text_encoder = TextEmbedder.fit(data.captions.captions(data.captions.caption_ids))
    model = Autoembedder(data.descriptors.dim, seed=0)
    train(model, data, text_encoder, np.asarray(data.image_ids), epochs=epochs, progress=False)
    database = ImageDatabase.build(model, data.descriptors, text_encoder)
    return save_bundle(out, model, text_encoder, database)


class Args:
    """What ``semsearch serve`` parses, for app_from_args."""

    def __init__(self, model, data, images=None, captions=None, host="127.0.0.1", port=8000, db=None):
        self.model, self.data, self.images, self.captions, self.host, self.port = model, data, images, captions, host, port
        self.db = db
