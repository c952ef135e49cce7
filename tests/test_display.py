"""Tests for semsearch.display: the image grid, image lookup, download cache, saving."""
from __future__ import annotations

import http.server
import math
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: no windows in tests
import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from semsearch.common.coco_images import ImageNotFoundError, find_local_image, load_image
from semsearch.display import save_figure, show_images


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def no_proxy(monkeypatch):
    """Talk to the loopback test server directly, even where an HTTP proxy is configured."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def small_images(tmp_path: Path) -> Path:
    """A folder with three small synthetic images named like COCO 2017 files (ids 1, 2, 3)."""
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for coco_id, (h, w) in {1: (20, 30), 2: (24, 16), 3: (10, 10)}.items():
        pixels = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{coco_id:012d}.png", format="PNG")
        # PNG bytes under a .jpg name keep pixels exact (no JPEG loss) for comparisons
        (folder / f"{coco_id:012d}.png").rename(folder / f"{coco_id:012d}.jpg")
    return folder


@pytest.fixture
def real_images(real_data: Path) -> Path:
    return real_data / "coco" / "images"


def visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def axes_text(ax) -> str:
    return "\n".join(t.get_text() for t in ax.texts)


def pixels_of(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


class _ImageServer:
    """Serve one file's bytes on 127.0.0.1 (loopback only), counting requests."""

    def __init__(self, payload: bytes):
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "image/jpeg")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # keep test output quiet
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def url(self, name: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def closed_port_url() -> str:
    """A loopback URL where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/000000000139.jpg"


# --------------------------------------------------------------------------- input checks


def test_empty_ids_raise():
    with pytest.raises(ValueError, match="no images to show"):
        show_images([])


def test_scores_length_mismatch_names_both_lengths(small_images):
    with pytest.raises(ValueError, match=r"2 scores.*3 image ids"):
        show_images([1, 2, 3], [0.5, 0.4], image_dir=small_images)


def test_captions_length_mismatch(small_images):
    with pytest.raises(ValueError, match=r"1 captions.*2 image ids"):
        show_images([1, 2], captions=["a"], image_dir=small_images)


@pytest.mark.parametrize("ncols", [0, -2])
def test_bad_ncols(small_images, ncols):
    with pytest.raises(ValueError, match="ncols"):
        show_images([1], image_dir=small_images, ncols=ncols)


def test_importing_display_does_not_import_pyplot():
    code = "import sys, semsearch.display; print('matplotlib.pyplot' in sys.modules)"
    repo_root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=repo_root
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- grid (synthetic)


@pytest.mark.parametrize("n, ncols", [(1, 3), (3, 3), (4, 3), (5, 2), (7, 4)])
def test_grid_geometry(small_images, n, ncols):
    ids = [1, 2, 3, 1, 2, 3, 1][:n]
    fig = show_images(ids, image_dir=small_images, ncols=ncols)
    assert isinstance(fig, matplotlib.figure.Figure)
    assert len(visible_axes(fig)) == n
    rows = {ax.get_subplotspec().rowspan.start for ax in fig.axes}
    assert len(rows) == math.ceil(n / min(ncols, n))


def test_titles_show_ids_and_scores(small_images):
    fig = show_images([1, 2, 3], np.array([0.8123, 0.5, 0.04999]), image_dir=small_images)
    titles = [ax.get_title() for ax in visible_axes(fig)]
    assert titles == ["1  0.812", "2  0.500", "3  0.050"]


def test_titles_without_scores(small_images):
    fig = show_images([3, 1], image_dir=small_images)
    assert [ax.get_title() for ax in visible_axes(fig)] == ["3", "1"]


def test_captions_and_query(small_images):
    long_caption = "a very long caption " * 10
    fig = show_images([1, 2], captions=[long_caption, None], query="dogs", image_dir=small_images)
    ax1, ax2 = visible_axes(fig)
    assert "\n" in ax1.get_xlabel()  # wrapped
    assert ax1.get_xlabel().split() == long_caption.split()
    assert ax2.get_xlabel() == ""
    assert fig._suptitle is not None and fig._suptitle.get_text() == "dogs"


def test_pixels_shown_equal_file_pixels(small_images):
    fig = show_images([1, 2], image_dir=small_images)
    for ax, coco_id in zip(visible_axes(fig), [1, 2]):
        expected = pixels_of(small_images / f"{coco_id:012d}.jpg")
        np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), expected)


def test_grayscale_image_is_shown_as_rgb(tmp_path):
    Image.fromarray(np.full((8, 8), 77, dtype=np.uint8)).save(tmp_path / "000000000005.jpg")
    img = load_image(5, image_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert img.mode == "RGB" and np.asarray(img).shape == (8, 8, 3)


def test_missing_id_gives_message_cell(small_images, tmp_path):
    fig = show_images([1, 424242], [0.9, 0.1], image_dir=small_images, cache_dir=tmp_path / "c")
    ok, missing = visible_axes(fig)
    assert len(ok.images) == 1
    assert len(missing.images) == 0
    text = axes_text(missing)
    assert "424242" in text and "not found" in text
    assert missing.get_title() == "424242  0.100"


def test_corrupt_file_gives_message_cell(tmp_path):
    (tmp_path / "000000000007.jpg").write_bytes(b"this is not a jpeg" * 10)
    fig = show_images([7], image_dir=tmp_path, cache_dir=tmp_path / "cache")
    (ax,) = visible_axes(fig)
    assert len(ax.images) == 0
    assert "7" in axes_text(ax) and "not a readable image" in axes_text(ax).replace("\n", " ")


def test_load_image_errors_are_file_not_found(tmp_path):
    with pytest.raises(ImageNotFoundError, match=r"image 99 not found in .*no url") as info:
        load_image(99, image_dir=tmp_path, cache_dir=tmp_path / "cache")
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path) in str(info.value)


def test_truncated_file_raises(small_images, tmp_path):
    real = (small_images / "000000000001.jpg").read_bytes()
    (tmp_path / "000000000001.jpg").write_bytes(real[: len(real) // 2])
    with pytest.raises(ImageNotFoundError, match="not a readable image"):
        load_image(1, image_dir=tmp_path, cache_dir=tmp_path / "cache")


def test_save_figure_writes_png(small_images, tmp_path):
    fig = show_images([1, 2, 3], [0.3, 0.2, 0.1], image_dir=small_images, query="q")
    out = save_figure(fig, tmp_path / "sub" / "grid.png")
    assert out == tmp_path / "sub" / "grid.png"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(out) as img:
        img.verify()
    assert [p.name for p in out.parent.iterdir()] == ["grid.png"]  # no temporary files left


# --------------------------------------------------------------------------- real COCO images

REAL_IDS = [139, 790, 802]


def test_real_grid_pixels_and_titles(real_images):
    fig = show_images(REAL_IDS, [0.812, 0.75, 0.5], image_dir=real_images, ncols=2)
    axes = visible_axes(fig)
    assert len(axes) == 3
    assert len({ax.get_subplotspec().rowspan.start for ax in fig.axes}) == 2
    for ax, coco_id in zip(axes, REAL_IDS):
        assert ax.get_title().startswith(f"{coco_id}  ")
        expected = pixels_of(real_images / f"{coco_id:012d}.jpg")
        shown = np.asarray(ax.images[0].get_array())
        assert shown.shape == expected.shape
        np.testing.assert_array_equal(shown, expected)
    assert axes[0].get_title() == "139  0.812"


def test_coco_2014_file_names_are_found(real_images, tmp_path):
    shutil.copy(real_images / "000000000139.jpg", tmp_path / "COCO_train2014_000000000139.jpg")
    assert find_local_image(139, tmp_path) == tmp_path / "COCO_train2014_000000000139.jpg"
    assert find_local_image(1139, tmp_path) is None
    img = load_image(139, image_dir=tmp_path, cache_dir=tmp_path / "cache")
    np.testing.assert_array_equal(np.asarray(img), pixels_of(real_images / "000000000139.jpg"))


def test_download_once_then_cache(real_images, tmp_path, no_proxy):
    payload = (real_images / "000000000790.jpg").read_bytes()
    cache = tmp_path / "cache"
    with _ImageServer(payload) as server:
        url = server.url("000000000790.jpg")
        first = load_image(790, image_dir=tmp_path / "empty", cache_dir=cache, url=url)
        assert server.requests == 1
        assert (cache / "000000000790.jpg").read_bytes() == payload
        second = load_image(790, cache_dir=cache, url=url)
        fig = show_images([790], cache_dir=cache, urls={790: url})
        assert server.requests == 1  # served from the cache
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    assert len(visible_axes(fig)[0].images) == 1


def test_download_of_non_image_is_not_cached(tmp_path, no_proxy):
    cache = tmp_path / "cache"
    with _ImageServer(b"<html>error page</html>") as server:
        with pytest.raises(ImageNotFoundError, match="readable image"):
            load_image(12, cache_dir=cache, url=server.url("x.jpg"))
    assert not (cache / "000000000012.jpg").exists()


def test_unreachable_url_fails_quickly(tmp_path, no_proxy):
    url = closed_port_url()
    start = time.monotonic()
    with pytest.raises(ImageNotFoundError, match=r"image 139 could not be downloaded from"):
        load_image(139, cache_dir=tmp_path / "cache", url=url)
    fig = show_images([139], [0.5], cache_dir=tmp_path / "cache", urls={139: url})
    assert time.monotonic() - start < 5
    (ax,) = visible_axes(fig)
    assert len(ax.images) == 0 and "139" in axes_text(ax)
    assert not (tmp_path / "cache" / "000000000139.jpg").exists()
