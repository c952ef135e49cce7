"""Time `index_folder` on a folder of images: first run, and an incremental re-run (run by hand).

    python benchmarks/index_speed.py IMAGES_DIR

Prints the first run's images/s beside the bare backbone's forward pass on the same
batches (decoding included for neither), and the no-change and one-change re-index times.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from semsearch.backbones import load_backbone
from semsearch.common.images import find_image_files, open_image
from semsearch.photos.folder import index_folder


def main(images_dir: str) -> None:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "photos"
        shutil.copytree(images_dir, root)
        files = find_image_files(root)
        backbone = load_backbone("efficientnet-lite0")
        images = [open_image(f) for f in files]
        start = time.perf_counter()
        for i in range(0, len(images), 32):
            batch = torch.stack([backbone.preprocess(im) for im in images[i : i + 32]])
            backbone.forward(batch)
        bare = time.perf_counter() - start
        db = Path(tmp) / "db.npz"
        start = time.perf_counter()
        report = index_folder(root, db, progress=False)
        first = time.perf_counter() - start
        start = time.perf_counter()
        again = index_folder(root, db, progress=False)
        second = time.perf_counter() - start
        os.utime(files[0], ns=(1, 1))
        files[1].unlink()
        start = time.perf_counter()
        third = index_folder(root, db, progress=False)
        one = time.perf_counter() - start
        print(f"{len(files)} images, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
        print(f"preprocess + forward only (batches of 32): {len(files) / bare:.1f} images/s")
        print(f"index_folder, first run:  {first:.1f} s, {len(files) / first:.1f} images/s "
              f"({bare / first:.2f}x the bare model's speed); {report.summary()}")
        print(f"re-index, nothing changed: {second:.2f} s; {again.summary()}")
        print(f"re-index, 1 changed + 1 deleted: {one:.2f} s; {third.summary()}")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images_dir", help="a folder of images (copied to a temporary folder first)")
    main(parser.parse_args().images_dir)
