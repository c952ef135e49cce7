"""Bad input, table-driven: each case gives one clear error (type and message) or the right answer.

Areas: descriptor pickles, COCO caption files, image files, figure names, output paths,
model folders, similar_images arguments. (Malicious pickles, GloVe caches, kill -9 and
concurrent saves have their own modules: test_safe_pickle, test_glove, test_bundle_safety.)
"""
from __future__ import annotations

import io
import re
import json
import os
import pickle
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semsearch.common.files import check_writable, ensure_distinct_output
from semsearch.bundle import check_bundle_target, save_bundle
from semsearch.coco import CocoCaptions
from semsearch.descriptors import Descriptors
from semsearch.display import save_figure
from semsearch.errors import InputError, InputTypeError, SemsearchError, UnknownIdError, UnsafeFileError
from semsearch.common.images import open_image
from semsearch.routes.similar import similar_images


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
    monkeypatch.setattr("semsearch.routes.similar.backbone_info", lambda name: {"backbone": name, "dim": 6})
    path = tmp_path / "holiday.jpg"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        similar_images(path, descriptors, k=2)
    assert fragment in str(info.value) and "holiday.jpg" in str(info.value)
    one_line(info.value)


def test_every_error_here_is_a_semsearch_error():
    for error in (InputError, InputTypeError, UnknownIdError, UnsafeFileError):
        assert issubclass(error, SemsearchError)


# ============================================================================= second pass
# (issue 10, the rest): ids and k values checked at every entry, non-finite files refused,
# text-encoder inputs, submission CSVs, approximate-index fingerprints, devices and weights.

from gensim.models import KeyedVectors

from semsearch.database import ImageDatabase
from semsearch.model import Autoembedder, embed_images
from semsearch.text import TextEmbedder

WORDS = ["dog", "cat", "sky", "beach"]


@pytest.fixture(scope="module")
def glove():
    kv = KeyedVectors(vector_size=4)
    kv.add_vectors(WORDS, np.eye(4, dtype=np.float32))
    return kv


@pytest.fixture
def coco(tmp_path):
    path = tmp_path / "captions_x.json"
    path.write_text(json.dumps(_coco()), encoding="utf-8")
    return CocoCaptions.load(path)


# ----------------------------------------------------------------------------- ids, at every lookup

#: (bad id, error type, fragment of the message): the value is named, never coerced.
BAD_IDS = {
    "float": (1.0, InputTypeError, "got 1.0 (float)"),
    "numpy-float": (np.float64(1.0), InputTypeError, "must be an integer, got np.float64(1.0) (float64)"),
    "bool": (True, InputTypeError, "got True (bool)"),
    "none": (None, InputTypeError, "got None (NoneType)"),
    "plus-sign": ("+1", InputError, "digits 0-9 only, got '+1'"),
    "space": (" 1", InputError, "digits 0-9 only, got ' 1'"),
    "arabic-indic-digit": ("\u0661", InputError, "digits 0-9 only, got '\u0661'"),
    "negative": (-1, InputError, "is >= 0, got -1"),
}


def _lookups(coco, descriptors):
    from semsearch.common.coco_images import load_image
    from semsearch.display import show_images
    from semsearch.common.keys import coco_file_name

    database = ImageDatabase([1, 2, 3], np.eye(3, 4))
    return {
        "database.vector_of": database.vector_of,
        "coco.captions_of": coco.captions_of,
        "coco.caption_ids_of": coco.caption_ids_of,
        "coco.file_name": coco.file_name,
        "coco.coco_url": coco.coco_url,
        "coco.subset": lambda i: coco.subset([i]),
        "descriptors.rows_of": lambda i: descriptors.rows_of([i]),
        "descriptors.vectors_of": lambda i: descriptors.vectors_of([i]),
        "descriptors.__contains__": lambda i: i in descriptors,
        "keys.coco_file_name": coco_file_name,
        "display.load_image": lambda i: load_image(i, image_dir="."),
        "display.show_images": lambda i: show_images([i]),
    }


LOOKUPS = ["database.vector_of", "coco.captions_of", "coco.caption_ids_of", "coco.file_name", "coco.coco_url",
           "coco.subset", "descriptors.rows_of", "descriptors.vectors_of", "descriptors.__contains__",
           "keys.coco_file_name", "display.load_image", "display.show_images"]


@pytest.mark.parametrize("lookup, case", [
    (lookup, case) for lookup in LOOKUPS for case in BAD_IDS
    if not (lookup == "display.show_images" and isinstance(BAD_IDS[case][0], str))  # a str there is a file path
])
def test_bad_ids_are_refused_at_every_lookup(coco, descriptors, lookup, case):
    value, error, fragment = BAD_IDS[case]
    with pytest.raises(error) as info:
        _lookups(coco, descriptors)[lookup](value)
    assert fragment in str(info.value)
    one_line(info.value)


@pytest.mark.parametrize("lookup", ["database.vector_of", "coco.captions_of", "coco.file_name", "descriptors.rows_of"])
def test_good_ids_still_work_as_int_numpy_int_and_digit_string(coco, descriptors, lookup):
    coco_ids = {"database.vector_of": 1, "coco.captions_of": 1, "coco.file_name": 1, "descriptors.rows_of": 139}
    fn, good = _lookups(coco, descriptors)[lookup], coco_ids[lookup]
    expected = fn(good)
    for spelling in (np.int64(good), str(good)):
        np.testing.assert_array_equal(np.asarray(fn(spelling)), np.asarray(expected))


@pytest.mark.parametrize("value, error, fragment", [
    (10.0, InputTypeError, "a COCO caption id must be an integer, got 10.0"),
    ("+10", InputError, "a COCO caption id is written with the digits 0-9 only, got '+10'"),
    (False, InputTypeError, "got False (bool)"),
])
def test_bad_caption_ids(coco, value, error, fragment):
    for lookup in (coco.caption, coco.image_of):
        with pytest.raises(error, match=re.escape(fragment)):
            lookup(value)


def test_unknown_ids_name_the_id(coco, descriptors):
    with pytest.raises(UnknownIdError, match="unknown COCO image id 7"):
        coco.captions_of(7)
    with pytest.raises(UnknownIdError, match="no descriptor for COCO image id 7"):
        descriptors.rows_of([139, 7])
    with pytest.raises(UnknownIdError, match="COCO image id 7 is not in the database"):
        ImageDatabase([1, 2], np.eye(2, 4)).vector_of(7)


def test_path_keyed_database_wants_a_path():
    database = ImageDatabase(["a.jpg", "b/c.png"], np.eye(2, 4))
    np.testing.assert_array_equal(database.vector_of(Path("b/c.png")), database.vectors[1])
    with pytest.raises(InputTypeError, match="keyed by path \\(str\\), got 1 \\(int\\)"):
        database.vector_of(1)


# ----------------------------------------------------------------------------- k, wherever one comes in

BAD_KS = {
    "float": (2.5, InputTypeError, "got 2.5"),
    "whole-float": (3.0, InputTypeError, "got 3.0"),
    "bool": (True, InputTypeError, "got True"),
    "string": ("3", InputTypeError, "got '3'"),
    "none": (None, InputTypeError, "got None"),
    "zero": (0, InputError, "got 0"),
    "negative": (-1, InputError, "got -1"),
}


def _k_takers(glove):
    from semsearch.routes.tags import image_tags, similar_words

    text = TextEmbedder.fit(["a dog", "a cat on the beach", "sky"], glove)
    database = ImageDatabase([1, 2, 3], np.eye(3, 4), text)
    return {
        "database.query(text)": lambda k: database.query("dog", k=k),
        "database.query(vector)": lambda k: database.query(np.ones(4), k=k),
        "image_tags": lambda k: image_tags(np.ones(4), text, k=k),
        "similar_words": lambda k: similar_words("dog", text, k=k),
        "write_submission": lambda k: __import__("semsearch.routes.submission", fromlist=["x"]).write_submission(
            database, {"q": "dog"}, "never-written.csv", k=k),
    }


@pytest.mark.parametrize("taker", ["database.query(text)", "database.query(vector)", "image_tags", "similar_words",
                                   "write_submission"])
@pytest.mark.parametrize("case", list(BAD_KS))
def test_bad_k_is_refused_everywhere(glove, tmp_path, monkeypatch, taker, case):
    monkeypatch.chdir(tmp_path)
    value, error, fragment = BAD_KS[case]
    with pytest.raises(error) as info:
        _k_takers(glove)[taker](value)
    assert f"k must be an integer >= 1, {fragment}" in str(info.value)
    one_line(info.value)
    assert not (tmp_path / "never-written.csv").exists()


@pytest.mark.parametrize("ks, error, fragment", [
    ((1, 2.5), InputTypeError, "every k in ks must be an integer >= 1, got 2.5"),
    ((0,), InputError, "every k in ks must be an integer >= 1, got 0"),
    (5, InputTypeError, "not one number (5): wrap it in a list"),
    ((), InputError, "ks is empty"),
    ((True,), InputTypeError, "got True"),
])
def test_bad_ks_lists(ks, error, fragment):
    from semsearch.evaluation import chance_levels, retrieval_scores
    from semsearch.routes.submission import score_rankings

    for call in (lambda: retrieval_scores(np.array([1, 2]), 3, ks), lambda: chance_levels(3, ks),
                 lambda: score_rankings({"q": [1, 2]}, {"q": {2}}, ks)):
        with pytest.raises(error) as info:
            call()
        assert fragment in str(info.value)


def test_good_ks_give_the_hand_computed_recall():
    from semsearch.evaluation import retrieval_scores

    scores = retrieval_scores(np.array([1, 3, 2, 7]), 10, ks=[np.int64(2), 5])
    assert scores.recall == {2: 0.5, 5: 0.75}  # ranks <= 2: two of four; <= 5: three of four
    assert scores.mean_reciprocal_rank == pytest.approx((1 + 1 / 3 + 1 / 2 + 1 / 7) / 4)


# ----------------------------------------------------------------------------- non-finite numbers in files


def _nan_model(tmp_path, where="weight"):
    model = Autoembedder(4, 4)
    getattr(model.dense, where).data[(0,) * 2] = np.nan if where == "weight" else np.inf
    model.save(tmp_path / "m.npz")
    return tmp_path / "m.npz"


def test_model_with_nan_weights_is_refused_on_load(tmp_path):
    with pytest.raises(InputError) as info:
        Autoembedder.load(_nan_model(tmp_path))
    assert "m.npz (weight) holds 1 NaN or infinite value (first at index (0, 0))" in str(info.value)
    one_line(info.value)


def test_model_with_an_inf_bias_is_refused_on_load(tmp_path):
    with pytest.raises(InputError, match=r"m.npz \(bias\) holds 1 NaN or infinite value"):
        Autoembedder.load(_nan_model(tmp_path, "bias"))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_database_file_with_non_finite_vectors_is_refused(tmp_path, bad):
    vectors = np.eye(2, 4)
    vectors[1, 2] = bad
    np.savez(tmp_path / "db.npz", format="semsearch-database-1", image_ids=np.array([1, 2]), vectors=vectors,
             backbone=np.array(""))
    with pytest.raises(InputError, match=r"db.npz \(vectors\) holds 1 NaN or infinite value \(first at index \(1, 2\)\)"):
        ImageDatabase.load(tmp_path / "db.npz")


def test_descriptor_file_with_nan_is_refused(tmp_path):
    d = Descriptors({1: np.ones((1, 3)), 2: np.ones((1, 3))})
    d.save(tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as f:
        arrays = dict(f)
    arrays["vectors"][0, 0] = np.nan
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(InputError, match=r"d.npz \(vectors\) holds 1 NaN"):
        Descriptors.load(tmp_path / "d.npz")


def test_model_with_nan_weights_in_memory_cannot_embed(descriptors):
    model = Autoembedder(6, 4)
    model.dense.weight.data[2, 1] = np.nan
    for call in (lambda: embed_images(model, descriptors.vectors), lambda: ImageDatabase.build(model, descriptors)):
        with pytest.raises(InputError, match="the model's weight holds NaN or inf: it cannot embed images"):
            call()


def test_any_model_giving_nan_embeddings_is_refused(descriptors):
    class Broken:
        parameters = ()

        def __call__(self, x):
            return np.full((len(x), 4), np.nan)

    with pytest.raises(InputError, match="Broken gives NaN or inf embeddings"):
        embed_images(Broken(), descriptors.vectors)


TEXT_FILE_CASES = {
    "nan-weight": ('{"dog": NaN, "cat": 1.0}', None, "the weight of 'dog' is nan, not a finite number"),
    "infinite-weight": ('{"dog": Infinity}', None, "the weight of 'dog' is inf, not a finite number"),
    "string-weight": ('{"dog": "x"}', None, "the weight of 'dog' is 'x', not a number"),
    "bool-weight": ('{"dog": true}', None, "the weight of 'dog' is True, not a number"),
    "null-weight": ('{"dog": null}', None, "the weight of 'dog' is None, not a number"),
    "list-of-weights": ('["dog"]', None, "word weights must be a dict {word: weight}, got list"),
    "nan-sif-component": ('{"dog": 1.0}', "[NaN, 0, 0, 0]", "common_component must be a unit vector of shape (4,)"),
    "short-sif-component": ('{"dog": 1.0}', "[1, 0]", "common_component must be a unit vector of shape (4,)"),
    "text-sif-component": ('{"dog": 1.0}', '"abc"', "common_component must be a unit vector"),
}


@pytest.mark.parametrize("case", list(TEXT_FILE_CASES))
def test_bad_text_encoder_files(tmp_path, glove, case):
    weights, component, fragment = TEXT_FILE_CASES[case]
    extra = f', "common_component": {component}' if component else ""
    path = tmp_path / "text.json"
    path.write_text(f'{{"format": "semsearch-text-2", "weighting": "idf", "word_weights": {weights}{extra}}}')
    with pytest.raises(InputError) as info:
        TextEmbedder.load(path, glove)
    assert fragment in str(info.value) and "text.json" in str(info.value)
    one_line(info.value)


# ----------------------------------------------------------------------------- text where a list is expected


@pytest.mark.parametrize("texts, error, fragment", [
    ("a dog", InputTypeError, "not one str ('a dog'): wrap it in a list"),
    (b"a dog", InputTypeError, "not one str"),
    (["a dog", None], InputTypeError, "texts[1] is None (NoneType), not a str"),
    (["a dog", 42], InputTypeError, "texts[1] is 42 (int), not a str"),
    ([["a", "dog"]], InputTypeError, "texts[0] is ['a', 'dog'] (list), not a str"),
    (7, InputTypeError, "must be a list of strings, got int"),
])
def test_text_encoder_fit_refuses_what_is_not_a_list_of_strings(glove, texts, error, fragment):
    for weighting in ("idf", "sif", "mean"):
        with pytest.raises(error) as info:
            TextEmbedder.fit(texts, glove, weighting=weighting)
        assert fragment in str(info.value)


@pytest.mark.parametrize("query, fragment", [(None, "got NoneType"), (5, "got int"), ([None], "query[0] is None")])
def test_query_with_no_text(glove, query, fragment):
    database = ImageDatabase([1, 2], np.eye(2, 4), TextEmbedder.fit(["a dog", "a cat"], glove))
    with pytest.raises(InputTypeError, match=re.escape(fragment)):
        database.query(query)


def test_database_and_text_encoder_of_different_sizes(glove):
    with pytest.raises(InputError, match="the text encoder makes 4-d vectors but the database holds 6-d ones"):
        ImageDatabase([1, 2], np.eye(2, 6), TextEmbedder.fit(["a dog"], glove))


# ----------------------------------------------------------------------------- submission CSVs


CSV_CASES = {
    "stray-quote-swallows-the-rest": ('query_id,text\nq1,"a dog\nq2,a cat\nq3,a bird\n', 2, "never closed: it would swallow lines 2-4"),
    "stray-quote-in-the-header": ('"query_id,text\nq1,a dog\n', 1, "never closed: it would swallow lines 1-2"),
    "text-after-a-closing-quote": ('query_id,text\nq1,"a dog"s\nq2,a cat\n', 2, "',' expected after '\"'"),
    "bad-header": ("id,caption\nq1,a dog\n", 1, "the header must be query_id,text"),
    "too-many-fields": ("query_id,text\nq1,a dog, on a beach\n", 2, "quote a text that contains commas"),
    "empty-text": ("query_id,text\nq1,\n", 2, "has an empty text"),
    "duplicate-id": ("query_id,text\nq1,a dog\nq1,a cat\n", 3, "already appears on line 2"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_bad_queries_files(tmp_path, case):
    from semsearch.routes.submission import SubmissionError, read_queries

    content, line, fragment = CSV_CASES[case]
    path = tmp_path / "queries.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SubmissionError) as info:
        read_queries(path)
    assert f"line {line}: " in str(info.value) and fragment in str(info.value)


def test_quoted_texts_with_commas_quotes_and_newlines_are_read_right(tmp_path):
    from semsearch.routes.submission import read_queries

    path = tmp_path / "queries.csv"
    path.write_text('query_id,text\nq1,"a dog, running"\nq2,"a ""big"" cat"\nq3,"two\nlines"\n', encoding="utf-8")
    assert read_queries(path) == {"q1": "a dog, running", "q2": 'a "big" cat', "q3": "two\nlines"}


@pytest.mark.parametrize("token", ["+139", "\u0661\u0663\u0669", "1_39", "139.0", "-139"])
def test_submission_image_ids_written_oddly_are_refused(tmp_path, token):
    from semsearch.routes.submission import SubmissionError, read_submission

    path = tmp_path / "submission.csv"
    path.write_text(f"query_id,image_ids\nq1,{token} 285\n", encoding="utf-8")
    with pytest.raises(SubmissionError, match=f"line 2: query 'q1': image id '{re.escape(token)}' is not an integer"):
        read_submission(path)


def test_write_submission_onto_its_own_queries_file_is_refused(tmp_path, glove):
    from semsearch.routes.submission import write_submission

    queries = tmp_path / "queries.csv"
    queries.write_text("query_id,text\nq1,a dog\n", encoding="utf-8")
    database = ImageDatabase([1, 2], np.eye(2, 4), TextEmbedder.fit(["a dog", "a cat"], glove))
    with pytest.raises(InputError, match="submission file .*queries.csv is also an input of this command"):
        write_submission(database, queries, queries)
    assert queries.read_text(encoding="utf-8") == "query_id,text\nq1,a dog\n"
    with pytest.raises(InputError, match="is a folder"):
        write_submission(database, queries, tmp_path)


# ----------------------------------------------------------------------------- approximate index fingerprints


def test_index_built_for_other_vectors_of_the_same_size_is_refused(tmp_path):
    pytest.importorskip("hnswlib")
    rng = np.random.default_rng(0)
    first = ImageDatabase(np.arange(40), rng.normal(size=(40, 6)))
    first.build_ann()
    first.save(tmp_path / "a.npz")
    other = ImageDatabase(np.arange(40), rng.normal(size=(40, 6)))
    with pytest.raises(InputError, match="the approximate index was built for other vectors"):
        ImageDatabase(other.keys, other.vectors, ann=first.ann)
    other.save(tmp_path / "b.npz")
    (tmp_path / "b.npz.index").write_bytes((tmp_path / "a.npz.index").read_bytes())  # a stale index beside it
    with pytest.raises(InputError) as info:
        ImageDatabase.load(tmp_path / "b.npz")
    assert "b.npz.index: the approximate index was built for other vectors" in str(info.value)
    assert "delete it to search exactly" in str(info.value)
    one_line(info.value)
    loaded = ImageDatabase.load(tmp_path / "a.npz")  # its own index still fits, after saving and loading
    assert loaded.ann.fingerprint == first.ann.fingerprint


def test_index_with_no_fingerprint_is_refused():
    pytest.importorskip("hnswlib")
    database = ImageDatabase(np.arange(30), np.random.default_rng(1).normal(size=(30, 5)))
    index = database.build_ann()
    index.fingerprint = None
    with pytest.raises(InputError, match="records no fingerprint"):
        ImageDatabase(database.keys, database.vectors, ann=index)


def test_index_of_raw_vectors_fits_the_database_of_those_vectors():
    pytest.importorskip("hnswlib")
    from semsearch.routes.ann import ApproximateIndex

    raw = np.random.default_rng(2).normal(size=(30, 5))
    database = ImageDatabase(np.arange(30), raw, ann=ApproximateIndex.build(raw))
    ids, _ = database.query(raw[3], k=1, approximate=True)
    assert ids[0] == 3


# ----------------------------------------------------------------------------- devices and weights


@pytest.mark.parametrize("device, fragment", [
    ("cuda", "this machine has no CUDA GPU that torch can use"),
    ("cuda:7", "CUDA GPU"),
    ("tpu", "unknown device 'tpu'"),
    ("not a device", "unknown device 'not a device'"),
])
def test_bad_devices_are_one_line(device, fragment):
    torch = pytest.importorskip("torch")
    from semsearch.cnn.torch_backbones import _device_name

    if device.startswith("cuda") and torch.cuda.is_available() and device == "cuda":
        pytest.skip("this machine has a GPU")
    with pytest.raises(InputError) as info:
        _device_name(device)
    assert fragment in str(info.value)
    one_line(info.value)


def test_resnet18_weights_without_internet_is_one_line(monkeypatch):
    pytest.importorskip("torchvision")
    import urllib.error

    import torchvision.models

    from semsearch.cnn import torch_backbones

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models, "resnet18", offline)
    with pytest.raises(InputError) as info:
        torch_backbones._resnet18(pretrained=True)
    assert "ResNet18's ImageNet weights could not be downloaded (URLError" in str(info.value)
    assert "efficientnet-lite0" in str(info.value)
    one_line(info.value)
