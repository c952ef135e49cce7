"""Check a team's display by COCO id against :func:`semsearch.display.show_images`.

The task: ``show_images(image_ids, scores=None, *, image_dir=None, ...) -> Figure`` draws the
images of the given COCO ids (files ``<12-digit id>.jpg`` in ``image_dir``) in a grid, in the
order given (best match first), and returns the figure. The check writes a few one-colour
images, asks for them in a shuffled order, and reads the colours back off the figure's axes
(left to right, top to bottom).

Example
-------
>>> from semsearch.display import show_images
>>> check_show_images(show_images, verbose=False).passed
True
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np

from semsearch.exercises.checking import Checker, run_check
from semsearch.exercises.report import CheckReport

#: The one-colour images of the check, by COCO id.
COLOURS: Dict[int, tuple] = {139: (220, 30, 30), 285: (30, 200, 40), 632: (40, 60, 220), 724: (230, 220, 40),
                             776: (200, 40, 210), 785: (30, 210, 210), 802: (250, 250, 250)}


def write_images(folder: Path) -> None:
    """One small JPEG per id of :data:`COLOURS`, named as COCO names them."""
    from PIL import Image

    for coco_id, colour in COLOURS.items():
        Image.new("RGB", (48, 32), colour).save(folder / f"{coco_id:012d}.jpg", quality=95)


def shown_ids(figure) -> List[int]:
    """The ids of the colours shown on ``figure``'s axes, in reading order (rows top down, left to right)."""
    cells = []
    for ax in figure.get_axes():
        if not ax.get_visible() or not ax.images:
            continue
        pixels = np.asarray(ax.images[0].get_array(), dtype=np.float64)
        if pixels.max() <= 1.0:
            pixels = pixels * 255
        mean = pixels.reshape(-1, pixels.shape[-1])[:, :3].mean(axis=0) if pixels.ndim == 3 else np.repeat(pixels.mean(), 3)
        nearest = min(COLOURS, key=lambda i: float(np.sum((np.array(COLOURS[i]) - mean) ** 2)))
        box = ax.get_position()
        cells.append((-round(box.y1, 2), round(box.x0, 2), nearest))
    return [coco_id for _, _, coco_id in sorted(cells)]


def _battery(show_images: Callable, c: Checker) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    orders = [[632], [285, 139], [724, 139, 632], [776, 285, 802, 139, 632], [802, 785, 776, 724, 632, 285, 139]]
    with tempfile.TemporaryDirectory() as tmp:
        write_images(Path(tmp))
        for order in orders:
            scores = np.round(np.linspace(0.9, 0.5, len(order)), 2)
            c.case(f"show_images({order}, scores={scores.tolist()}, image_dir=<a folder of one-colour images>)")
            plt.close("all")
            out = c.call(show_images, list(order), scores, image_dir=tmp)
            figure = out if isinstance(out, Figure) else (plt.gcf() if plt.get_fignums() else None)
            c.expect(figure is not None, "a matplotlib Figure", type(out).__name__,
                     "return the figure (fig), and don't call plt.show() inside the function")
            got = shown_ids(figure)
            plt.close("all")
            c.expect(sorted(got) == sorted(order), f"the images {order}", f"the images {got}",
                     "show every image given, each once, loaded by its COCO id from image_dir")
            c.expect(got == list(order), f"in the order {order}", f"in the order {got}",
                     "show the images in the order given (best match first): don't sort or reorder the ids")
    c.passed("5 grids of 1 to 7 images: each image, once, by its id, in the order given")


def check_show_images(show_images: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``show_images(image_ids, scores, *, image_dir) -> Figure``."""
    return run_check("show_images", lambda c: _battery(show_images, c), verbose)
