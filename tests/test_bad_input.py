"""Bad input, table-driven: each case gives one clear error (type and message) or the right answer.

Areas: descriptor pickles, COCO caption files, image files, figure names, output paths,
model folders, similar_images arguments. (Malicious pickles, GloVe caches, kill -9 and
concurrent saves have their own modules: test_safe_pickle, test_glove, test_bundle_safety.)
"""
from __future__ import annotations

import io
import json
import os
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semsearch._io import check_writable, ensure_distinct_output
from semsearch.bundle import check_bundle_target, save_bundle
from semsearch.coco import CocoCaptions
from semsearch.descriptors import Descriptors
from semsearch.display import save_figure
from semsearch.errors import InputError, InputTypeError, SemsearchError, UnknownIdError, UnsafeFileError
from semsearch.images import open_image
from semsearch.similar import similar_images


def one_line(error: BaseException) -> None:
    text = str(error)
    assert text and "\n" not in text, f"not one line: {text!r}"
    assert "Traceback" not in text


# ----------------------------------------------------------------------------- descriptor pickles


def _pickle(obj, protocol=4) -> bytes:
    return pickle.dumps(obj, protocol=protocol)


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


DESCRIPTOR_CASES = {
    "empty-file": (b"", InputError, "not a readable descriptor pickle"),
    "text-file": (b"139,0.1,0.2\n", InputError, "not a readable descriptor pickle"),
    "truncated": (_pickle({1: np.ones((1, 8))})[:-9], InputError, "not a readable descriptor pickle"),
    "a-list": (_pickle([np.ones(3)]), InputError, "holds a list, expected a dict"),
    "a-bare-array": (_pickle(np.ones((2, 3))), InputError, "holds a ndarray, expected a dict"),
    "empty-dict": (_pickle({}), InputError, "no descriptors given"),
    "string-keys": (_pickle({"abc": np.ones((1, 3))}), InputError, "keys must be COCO image ids"),
    "ragged": (_pickle({1: np.ones((1, 3)), 2: np.ones((1, 4))}), InputError, "different sizes: [3, 4]"),
    "3-d-value": (_pickle({1: np.ones((2, 2, 2))}), InputError, "image 1 has shape (2, 2, 2)"),
    "nan-value": (_pickle({5: np.array([[np.nan, 1.0]])}), InputError, "images [5] contain NaN or inf"),
    "string-array": (_pickle({1: np.array(["a", "b"])}), InputError, "not numeric"),
    "os-system": (_pickle(_Reduce(os.system, ("true",))), UnsafeFileError, "could run code"),
    "eval": (_pickle({1: _Reduce(eval, ("1",))}), UnsafeFileError, "builtins.eval"),
    "getattr": (_pickle(_Reduce(getattr, ("x", "upper"))), UnsafeFileError, "builtins.getattr"),
    "class": (_pickle({1: Path("x")}), UnsafeFileError, "pathlib"),
    "protocol-0-payload": (_pickle(_Reduce(os.system, ("true",)), 0), UnsafeFileError, "could run code"),
}


@pytest.mark.parametrize("case", list(DESCRIPTOR_CASES))
def test_bad_descriptor_files(tmp_path, case):
    content, error, fragment = DESCRIPTOR_CASES[case]
    path = tmp_path / f"{case}.pkl"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        Descriptors.load(path)
    assert fragment in str(info.value)
    one_line(info.value)


def test_missing_descriptor_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="descriptor file not found: .*nope.pkl"):
        Descriptors.load(tmp_path / "nope.pkl")


# ----------------------------------------------------------------------------- COCO caption files

GOOD_IMAGE = {"id": 1, "file_name": "000000000001.jpg", "coco_url": "http://x/1.jpg"}
GOOD_ANN = {"id": 10, "image_id": 1, "caption": "a dog"}


def _coco(images=None, annotations=None, **extra):
    data = {"images": [GOOD_IMAGE] if images is None else images,
            "annotations": [GOOD_ANN] if annotations is None else annotations}
    data.update(extra)
    return data


COCO_CASES = {
    "images-not-list": (_coco(images={"id": 1}), '"images" in captions_x.json is a object, not a list'),
    "annotations-null": (_coco(annotations=None) | {"annotations": None}, '"annotations" in captions_x.json is a null'),
    "image-not-object": (_coco(images=[7]), "image 0 in captions_x.json is a number, not an object"),
    "image-no-id": (_coco(images=[{"file_name": "a.jpg"}]), 'image 0 in captions_x.json has no "id"'),
    "image-float-id": (_coco(images=[{"id": 1.5}]), '"id": 1.5, which is not an integer'),
    "image-whole-float-id": (_coco(images=[{"id": 1.0}]), '"id": 1.0, which is not an integer'),
    "image-bool-id": (_coco(images=[{"id": True}]), '"id": true, which is not an integer'),
    "image-string-id": (_coco(images=[{"id": "1"}]), '"id": "1", which is not an integer'),
    "image-negative-id": (_coco(images=[{"id": -3}]), '"id": -3, which is negative'),
    "image-twice": (_coco(images=[GOOD_IMAGE, GOOD_IMAGE]), "image id 1 is listed twice in captions_x.json"),
    "image-file-name-number": (_coco(images=[{"id": 1, "file_name": 5}]), '"file_name" that is not a string'),
    "ann-no-id": (_coco(annotations=[dict(GOOD_ANN, id=n) for n in range(3)] + [{"image_id": 1, "caption": "x"}]),
                  'annotation 3 in captions_x.json has no "id"'),
    "ann-no-image-id": (_coco(annotations=[{"id": 1, "caption": "x"}]), 'annotation 0 in captions_x.json has no "image_id"'),
    "ann-no-caption": (_coco(annotations=[{"id": 1, "image_id": 1}]), 'annotation 0 in captions_x.json has no "caption"'),
    "instances-file": (_coco(annotations=[{"id": 1, "image_id": 1, "bbox": [0, 0, 1, 1]}]), "instances or keypoints"),
    "caption-null": (_coco(annotations=[{"id": 1, "image_id": 1, "caption": None}]), '"caption" that is not a string: None'),
    "caption-number": (_coco(annotations=[{"id": 1, "image_id": 1, "caption": 42}]), '"caption" that is not a string: 42'),
    "ann-float-image-id": (_coco(annotations=[{"id": 1, "image_id": 1.0, "caption": "x"}]), '"image_id": 1.0, which is not'),
    "ann-string-id": (_coco(annotations=[{"id": "10", "image_id": 1, "caption": "x"}]), '"id": "10", which is not'),
    "ann-twice": (_coco(annotations=[GOOD_ANN, GOOD_ANN]), "caption id 10 is used twice in captions_x.json"),
    "ann-unlisted-image": (_coco(annotations=[{"id": 1, "image_id": 99, "caption": "x"}]), "image 99, which is not listed"),
    "ann-not-object": (_coco(annotations=[["a"]]), "annotation 0 in captions_x.json is a list, not an object"),
    "top-level-list": ([], "is not a COCO captions file"),
    "no-annotations-key": ({"images": []}, "is not a COCO captions file"),
}


@pytest.mark.parametrize("case", list(COCO_CASES))
def test_bad_coco_files(tmp_path, case):
    data, fragment = COCO_CASES[case]
    path = tmp_path / "captions_x.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(InputError) as info:
        CocoCaptions.load(path)
    assert fragment in str(info.value)
    one_line(info.value)


def test_good_coco_file_still_loads(tmp_path):
    path = tmp_path / "captions_x.json"
    path.write_text(json.dumps(_coco()), encoding="utf-8")
    coco = CocoCaptions.load(path)
    assert coco.captions_of(1) == ["a dog"] and coco.file_name(1) == "000000000001.jpg"


@pytest.mark.parametrize("content, fragment", [(b"{not json", "not valid JSON"), (b"\xff\xfe\x00", "not valid JSON")])
def test_unparseable_coco_files(tmp_path, content, fragment):
    path = tmp_path / "captions_x.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=fragment):
        CocoCaptions.load(path)


# ----------------------------------------------------------------------------- image files


def _png(size=(4, 3), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=0).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(size=(16, 16)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color=(200, 10, 10)).save(buffer, format="JPEG")
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and IHDR claiming width x height, with no pixel data (a 'bomb')."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


IMAGE_CASES = {
    "empty": (b"", "is empty (0 bytes), not an image"),
    "text": (b"hello, not an image", "is not an image file PIL can read"),
    "html-error-page": (b"<html><body>404</body></html>", "is not an image file PIL can read"),
    "truncated-jpeg": (_jpeg()[:200], "truncated or corrupt"),
    "truncated-png": (_png((64, 64))[:60], "truncated or corrupt"),
    "bomb-over-default-limit": (_png_header_only(9_500, 9_500), "90,250,000 pixels, more than the limit of 89,478,485"),
    "bomb-over-pil-limit": (_png_header_only(20_000, 20_000), "decodes to too many pixels (a decompression bomb?)"),
    "bomb-huge": (_png_header_only(100_000, 100_000), "decompression bomb"),
}


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_bad_image_files(tmp_path, case):
    content, fragment = IMAGE_CASES[case]
    path = tmp_path / f"{case}.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        open_image(path)
    assert fragment in str(info.value) and f"{case}.jpg" in str(info.value)
    one_line(info.value)
    with pytest.raises(InputError):  # the same from bytes
        open_image(content)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_images_of_every_mode_open_as_rgb(tmp_path, mode):
    path = tmp_path / "x.png" if mode != "CMYK" else tmp_path / "x.jpg"
    Image.new(mode, (5, 4)).save(path)
    image = open_image(path)
    assert image.mode == "RGB" and np.asarray(image).shape == (4, 5, 3)


def test_png_under_a_jpg_name_is_read_by_content(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(_png((7, 2)))
    assert open_image(path).size == (7, 2)


def test_max_pixels_is_adjustable(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(_png((10, 10)))
    with pytest.raises(InputError, match="100 pixels, more than the limit of 99"):
        open_image(path, max_pixels=99)
    assert open_image(path, max_pixels=100).size == (10, 10)


@pytest.mark.parametrize("source, error, fragment", [
    (None, InputTypeError, "must be a file path or bytes, got NoneType"),
    (139, InputTypeError, "got int"),
    ("nowhere.jpg", FileNotFoundError, "image file not found: nowhere.jpg"),
])
def test_open_image_wrong_arguments(source, error, fragment):
    with pytest.raises(error, match=fragment):
        open_image(source)


def test_real_coco_jpeg_opens(real_data):
    path = sorted((real_data / "coco" / "images").glob("*.jpg"))[0]
    with Image.open(path) as reference:
        expected = np.asarray(reference.convert("RGB"))
    np.testing.assert_array_equal(np.asarray(open_image(path)), expected)


# ----------------------------------------------------------------------------- figure names


@pytest.fixture
def figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1])
    yield fig
    plt.close(fig)


@pytest.mark.parametrize("name, magic", [
    ("grid.png", b"\x89PNG"), ("grid.jpg", b"\xff\xd8\xff"), ("grid.JPEG", b"\xff\xd8\xff"),
    ("grid.pdf", b"%PDF"), ("grid.svg", b"<?xml"),
])
def test_save_figure_writes_the_format_its_name_says(tmp_path, figure, name, magic):
    out = save_figure(figure, tmp_path / name)
    assert out.read_bytes().startswith(magic)


@pytest.mark.parametrize("name", ["grid", "grid.gif", "grid.jpg.txt", "grid.webp"])
def test_save_figure_refuses_names_without_a_known_format(tmp_path, figure, name):
    with pytest.raises(InputError, match=f"cannot tell which format to write .*{name}"):
        save_figure(figure, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_save_figure_onto_a_folder_is_refused(tmp_path, figure):
    (tmp_path / "grid.png").mkdir()
    with pytest.raises(InputError, match="grid.png: it is a folder"):
        save_figure(figure, tmp_path / "grid.png")


# ----------------------------------------------------------------------------- output paths


def test_output_same_as_input_is_refused(tmp_path):
    queries = tmp_path / "queries.csv"
    queries.write_text("id,text\n")
    with pytest.raises(InputError, match="queries.csv is also an input of this command"):
        ensure_distinct_output(queries, [tmp_path / "other.csv", queries])


def test_output_same_as_input_by_another_spelling(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    queries = tmp_path / "queries.csv"
    queries.write_text("x")
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(InputError, match="is also an input"):
        ensure_distinct_output("../queries.csv", [queries])


def test_output_through_a_symlink_or_hard_link_is_refused(tmp_path):
    queries = tmp_path / "queries.csv"
    queries.write_text("x")
    (tmp_path / "link.csv").symlink_to(queries)
    os.link(queries, tmp_path / "hard.csv")
    for out in ("link.csv", "hard.csv"):
        with pytest.raises(InputError, match="is also an input"):
            ensure_distinct_output(tmp_path / out, [queries])


def test_output_inside_an_input_folder_is_refused(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    with pytest.raises(InputError, match="database.npz lies inside an input of this command .*model"):
        ensure_distinct_output(model / "database.npz", [model])


def test_output_folder_holding_an_input_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "d.pkl").write_bytes(b"x")
    with pytest.raises(InputError, match="data holds an input of this command"):
        ensure_distinct_output(data, [data / "d.pkl"])


def test_distinct_outputs_are_accepted(tmp_path):
    (tmp_path / "in.csv").write_text("x")
    assert ensure_distinct_output(tmp_path / "out.csv", [tmp_path / "in.csv", None]) == tmp_path / "out.csv"
    assert ensure_distinct_output(tmp_path / "in.csv.bak", [tmp_path / "in.csv"]) == tmp_path / "in.csv.bak"


@pytest.mark.parametrize("out", ["", "   "])
def test_empty_output_path_is_refused(out):
    with pytest.raises(InputError, match="path is empty"):
        ensure_distinct_output(out, [])
    with pytest.raises(InputError, match="path is empty"):
        check_writable(out)


def test_check_writable(tmp_path):
    (tmp_path / "file").write_text("x")
    assert check_writable(tmp_path / "new" / "deeper" / "out.png") == tmp_path / "new" / "deeper" / "out.png"
    assert not (tmp_path / "new").exists()
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "out.png")
    assert list(tmp_path.iterdir()) == [tmp_path / "file"]  # the probe left nothing


def test_check_writable_on_a_read_only_file_system():
    target = Path("/proc/semsearch-out.png")
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc, a file system nobody can create files in")
    with pytest.raises(InputError, match="is not writable"):
        check_writable(target)


# ----------------------------------------------------------------------------- model folders


def test_model_folder_inside_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_bundle_target(tmp_path / "f" / "model")


def test_save_bundle_of_parts_that_do_not_fit(tmp_path):
    from gensim.models import KeyedVectors

    from semsearch.database import ImageDatabase
    from semsearch.model import Autoembedder
    from semsearch.text import TextEmbedder

    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(["dog", "cat"], np.eye(2, 4, dtype=np.float32))
    text = TextEmbedder.fit(["dog", "cat"], kv)
    database = ImageDatabase([1, 2], np.ones((2, 4)), text)
    with pytest.raises(InputError, match="do not fit together: model output 3-d, text embeddings 4-d"):
        save_bundle(tmp_path / "m", Autoembedder(5, 3), text, database)
    assert not (tmp_path / "m").exists()


# ----------------------------------------------------------------------------- similar_images


@pytest.fixture
def descriptors():
    rng = np.random.default_rng(0)
    return Descriptors({i: rng.normal(size=(1, 6)) for i in (139, 285, 632, 724)})


@pytest.mark.parametrize("k, error, fragment", [
    (2.5, InputTypeError, "k must be an integer >= 1, got 2.5"),
    (True, InputTypeError, "got True"),
    ("3", InputTypeError, "got '3'"),
    (None, InputTypeError, "got None"),
    (0, InputError, "got 0"),
    (-2, InputError, "got -2"),
])
def test_similar_images_bad_k(descriptors, k, error, fragment):
    with pytest.raises(error) as info:
        similar_images(139, descriptors, k=k)
    assert fragment in str(info.value)


@pytest.mark.parametrize("query, error, fragment", [
    (None, InputTypeError, "query must be a COCO id"),
    (7, UnknownIdError, "COCO image id 7 has no descriptor"),
    (np.ones(5), InputError, "has 5 values, but the database descriptors have 6"),
    (np.array([np.nan] * 6), InputError, "contains NaN or inf"),
    (np.zeros(6), InputError, "all zeros"),
])
def test_similar_images_bad_query(descriptors, query, error, fragment):
    with pytest.raises(error) as info:
        similar_images(query, descriptors, k=2)
    assert fragment in str(info.value)
    one_line(info.value)


@pytest.mark.parametrize("content, fragment", [(b"", "is empty"), (b"GIF89a-junk", "is not an image file"),
                                               (_jpeg()[:150], "truncated or corrupt")])
def test_similar_images_bad_image_file(tmp_path, descriptors, monkeypatch, content, fragment):
    import sys
    import types

    fake = types.ModuleType("semsearch.features")
    fake.DIM = 6
    fake.describe = lambda image, **kwargs: pytest.fail("a bad image must be refused before describing")
    monkeypatch.setitem(sys.modules, "semsearch.features", fake)
    import semsearch

    monkeypatch.setattr(semsearch, "features", fake, raising=False)
    monkeypatch.setattr("semsearch.similar.backbone_info", lambda name: {"backbone": name, "dim": 6})
    path = tmp_path / "holiday.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        similar_images(path, descriptors, k=2)
    assert fragment in str(info.value) and "holiday.jpg" in str(info.value)
    one_line(info.value)


def test_every_error_here_is_a_semsearch_error():
    for error in (InputError, InputTypeError, UnknownIdError, UnsafeFileError):
        assert issubclass(error, SemsearchError)
