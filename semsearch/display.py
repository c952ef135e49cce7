"""Show search results: a grid of COCO images with their ids, scores and captions.

Images are looked up by COCO id (an ``int``) with :func:`semsearch.common.coco_images.load_image`:
a local image folder, a download cache, or their ``coco_url`` (downloaded once). A missing or
broken image does not crash :func:`show_images`: its cell shows a short message instead of the
picture.

matplotlib's backend is not chosen here: ``pyplot`` is imported only when a figure is made,
so a notebook, a script or a test can pick its own backend first.

Examples
--------
>>> ids, scores = [139, 790, 802], [0.81, 0.77, 0.52]
>>> fig = show_images(ids, scores, query="a dog on a couch",
...                   image_dir="data/coco/images")                 # doctest: +SKIP
>>> save_figure(fig, "results.png")                                # doctest: +SKIP
"""
from __future__ import annotations

import io
import math
import os
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Sequence, Union

import numpy as np
from PIL import Image

from semsearch.common.files import atomic_write, check_writable
from semsearch.common.checks import check_image_id
from semsearch.errors import InputError
from semsearch.common.coco_images import ImageNotFoundError, load_image
from semsearch.common.images import image_format_of, open_image

if TYPE_CHECKING:  # only for type hints; importing pyplot here could fix the backend
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

PathLike = Union[str, "os.PathLike[str]"]

# --------------------------------------------------------------------------- the grid


def show_images(
    image_ids: Sequence[int],
    scores: Optional[Sequence[float]] = None,
    *,
    captions: Optional[Sequence[Optional[str]]] = None,
    query: Optional[str] = None,
    image_dir: Optional[PathLike] = None,
    cache_dir: Optional[PathLike] = None,
    urls: Optional[Mapping[int, str]] = None,
    ncols: int = 3,
    figsize: Optional[tuple[float, float]] = None,
    ax_size: float = 3.0,
) -> "Figure":
    """Show images in a grid, each titled with its id (and score), optionally captioned.

    Parameters
    ----------
    image_ids : sequence of int or str, shape (N,)
        COCO image ids, or image files (paths, relative to ``image_dir`` when it is given: the
        keys of a photo database), in the order to show them (e.g. best match first).
    scores : sequence of float, shape (N,), optional
        A score per image, shown in the title as ``"139  0.812"``.
    captions : sequence of str or None, shape (N,), optional
        A caption per image, wrapped and shown under it.
    query : str, optional
        Shown as the figure's title.
    image_dir, cache_dir : path, optional
        Where to look for images (see :func:`load_image`).
    urls : mapping int -> str, optional
        Download address per id, e.g. ``{i: coco.coco_url(i) for i in ids}``.
    ncols : int
        Images per row (at most N are used). Rows: ``ceil(N / ncols)``.
    figsize : (float, float), optional
        Figure size in inches; by default about ``ax_size`` inches per image.
    ax_size : float
        Size of one grid cell in inches, used when ``figsize`` is not given.

    Returns
    -------
    matplotlib.figure.Figure
        The figure; it is not shown (call ``plt.show()`` or :func:`save_figure`).
        An image that cannot be loaded shows a message in its cell instead.

    Raises
    ------
    ValueError
        If there are no ids, ``scores`` or ``captions`` have a different length than
        ``image_ids``, or ``ncols < 1``.

    Examples
    --------
    >>> fig = show_images([139, 790], [0.81, 0.77], query="a kitchen",
    ...                   image_dir="data/coco/images")                 # doctest: +SKIP
    >>> fig.savefig("results.png")                                     # doctest: +SKIP
    """
    import matplotlib.pyplot as plt  # here, not at module level: the caller picks the backend

    keys = [i if isinstance(i, (str, Path)) else check_image_id(i) for i in image_ids]  # COCO ids, or file paths
    check_grid(len(keys), scores, captions, ncols)
    ncols = min(ncols, len(keys))
    nrows = math.ceil(len(keys) / ncols)
    wrap_width = max(10, int(ax_size * 13))  # about 13 characters per inch at font size 9
    wrapped = [textwrap.fill(c, wrap_width) if c else "" for c in (captions or [""] * len(keys))]
    if figsize is None:
        caption_lines = max(text.count("\n") + 1 if text else 0 for text in wrapped)
        row_height = ax_size + 0.3 + 0.16 * caption_lines  # image + title + caption
        figsize = (ax_size * ncols, row_height * nrows + (0.4 if query else 0.0))

    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained")
    flat_axes = axes.ravel()
    for k, key in enumerate(keys):
        url = urls.get(key) if urls is not None and not isinstance(key, (str, Path)) else None
        draw_cell(flat_axes[k], key, None if scores is None else float(scores[k]), wrapped[k],
                  image_dir=image_dir, cache_dir=cache_dir, url=url, wrap_width=wrap_width)
    for ax in flat_axes[len(keys):]:
        ax.set_visible(False)
    if query:
        fig.suptitle(query, fontsize=12)
    return fig


def check_grid(n: int, scores, captions, ncols: int) -> None:
    """Raise InputError unless there are images, one score and caption each (if given), and ncols >= 1."""
    if n == 0:
        raise InputError("no images to show")
    if scores is not None and len(scores) != n:
        raise InputError(f"got {len(scores)} scores for {n} image ids; they must match")
    if captions is not None and len(captions) != n:
        raise InputError(f"got {len(captions)} captions for {n} image ids; they must match")
    if ncols < 1:
        raise InputError(f"ncols must be at least 1, got {ncols}")


def draw_cell(ax: "Axes", key, score: Optional[float], caption: str, *, image_dir, cache_dir, url, wrap_width: int) -> None:
    """One grid cell: the image (or why it is missing), titled with its key and score, captioned."""
    try:
        if isinstance(key, (str, Path)):
            img = _read_file(Path(image_dir or ".") / key)
        else:
            img = load_image(key, image_dir=image_dir, cache_dir=cache_dir, url=url)
        ax.imshow(np.asarray(img))
    except ImageNotFoundError as err:
        _show_message(ax, textwrap.fill(str(err), wrap_width))
    shown = "" if score is None else f"  {score:.3f}"
    name = path_title(key, wrap_width - len(shown)) if isinstance(key, (str, Path)) else str(key)
    ax.set_title(name + shown, fontsize=10)
    ax.set_xlabel(caption, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def path_title(path, width: int = 30) -> str:
    """A photo's path as a grid title of lines at most ``width`` long: its folder, shortened
    from the left (``…oliday 2019/``), over its file name, shortened in the middle.

    >>> print(path_title("Pictures/2019 Summer holiday in Brittany/IMG_20190714_103102.jpg", 20))
    …oliday in Brittany/
    IMG_20190…103102.jpg
    """
    width = max(int(width), 8)
    text = Path(path).as_posix()
    folder, _, name = text.rpartition("/")
    if len(name) > width:
        half = (width - 1) // 2
        name = name[:half] + "…" + name[len(name) - (width - 1 - half):]
    if not folder:
        return name
    folder += "/"
    if len(folder) > width:
        folder = "…" + folder[len(folder) - width + 1:]
    return f"{folder}\n{name}"


def _read_file(path: Path) -> Image.Image:
    """An image file as RGB, or ImageNotFoundError saying why not (shown in its cell)."""

    try:
        return open_image(path)
    except (OSError, ValueError) as err:
        raise ImageNotFoundError(str(err)) from None


def _show_message(ax: "Axes", message: str) -> None:
    """Write ``message`` in the middle of an empty axes (used in place of a missing image)."""
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=8, color="dimgray",
            transform=ax.transAxes)
    ax.set_facecolor("whitesmoke")


def first_caption(coco, coco_id) -> str:
    """The first human caption of an image, stripped; "" when ``coco`` does not describe it."""
    try:
        texts = coco.captions_of(coco_id)
    except KeyError:
        return ""
    return texts[0].strip() if texts else ""


def save_figure(fig: "Figure", path: PathLike, *, dpi: Optional[float] = None) -> Path:
    """Save ``fig`` in the format its name says (``.png``, ``.jpg``, ``.pdf``, ``.svg``), atomically.

    The file is never half-written, and never holds another format than its name says: a
    name without one of these suffixes is refused before anything is drawn.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, e.g. from :func:`show_images`.
    path : path
        Where to write it; parent folders are created.
    dpi : float, optional
        Resolution; by default the figure's own.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        A name without a known suffix, or a location that cannot be written.

    Examples
    --------
    >>> save_figure(show_images([139], image_dir="data/coco/images"), "one.png")  # doctest: +SKIP
    PosixPath('one.png')
    """
    file_format = image_format_of(path)
    check_writable(path, "figure file")
    buffer = io.BytesIO()
    fig.savefig(buffer, format=file_format, dpi=dpi)
    path = Path(path)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())
    return path


def result_grid(keys, scores, query: str, out=None, *, coco=None, image_dir=None, ncols: int = 3,
                captions=None) -> Optional[Path]:
    """The hits of a query as a picture grid, saved to ``out`` (returned) or shown in a window.

    Parameters
    ----------
    keys, scores : (k,)
        What :meth:`ImageDatabase.query` returned.
    coco : CocoCaptions, optional
        Writes each image's first caption under it, and lets missing COCO images be downloaded
        from their ``coco_url`` (cached).
    image_dir : path, optional
        Where the images are (COCO files by id, or the indexed folder of a photo database).
    captions : list of str, optional
        A line under each image instead of ``coco``'s first captions (e.g. a photo's date).
    """
    import matplotlib

    if out is not None:
        matplotlib.use("Agg")  # a file only: no window, works without a display
    import matplotlib.pyplot as plt

    if captions is None and coco is not None:
        captions = [first_caption(coco, key) for key in keys]
    urls = {int(k): coco.coco_url(k) for k in keys if coco.coco_url(k)} if coco is not None else None
    fig = show_images(keys, scores, captions=captions, query=query, image_dir=image_dir, urls=urls, ncols=ncols)
    try:
        if out is None:
            plt.show()
            return None
        return save_figure(fig, out)
    finally:
        plt.close(fig)
