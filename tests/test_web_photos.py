"""The web page's photo parts: filtered search with dates and folders, duplicates, more/less like this."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient
from photo_helpers import FakeBackbone, fake_model, holiday_folder

from semsearch.routes.feedback import feedback_query
from semsearch.photos.filters import PhotoColumns, PhotoFilter, filtered_query
from semsearch.photos.folder import PhotoDatabase, index_folder, load_search
from semsearch.web.app import create_app


@pytest.fixture(scope="module")
def served(real_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("web") / "Pictures"
    holiday_folder(real_data, root)
    shutil.copy(root / "2020" / "IMG_0.JPG", root / "2020" / "IMG_0 copy.JPG")
    db = root / ".semsearch" / "photos.npz"
    index_folder(root, db, model=fake_model(tmp_path_factory.mktemp("model")), backbone=FakeBackbone(), progress=False)
    search = load_search(db)
    database = search.database
    app = create_app(database, model=search.model, image_path=lambda key: root / key, photos=PhotoDatabase.load(db))
    return TestClient(app), database, db


def test_photo_search_filters_and_shows_date_and_folder(served):
    client, database, db = served
    info = client.get("/api/photos/info").json()
    assert info["cameras"] == ["Canon EOS 80D", "Google Pixel 3"] and "Holiday 2019/day 2" in info["folders"]
    assert (info["first"], info["last"]) == ("2018-03-01", "2020-04-01")
    params = {"q": "a dog on the beach", "k": 20, "after": "2019-06", "before": "2019-09", "folder": "Holiday 2019",
              "camera": "pixel"}
    body = client.get("/api/photos/search", params=params).json()
    only = PhotoFilter(after="2019-06", before="2019-09", folder="Holiday 2019", camera="pixel")
    keys, scores = filtered_query(database, PhotoColumns.load(db), "a dog on the beach", only, k=20)
    assert [r["key"] for r in body["results"]] == keys.tolist() and len(keys) == 8
    np.testing.assert_allclose([r["score"] for r in body["results"]], scores, atol=1e-6)
    first = body["results"][0]
    assert first["folder"].startswith("Holiday 2019") and first["taken"].startswith("2019-")
    assert first["caption"] == f"{first['taken']} · {first['folder']}" and first["taken_source"] == "exif"
    scans = client.get("/api/photos/search", params={"q": "a dog", "folder": "scans"}).json()["results"]
    assert all(r["caption"].endswith("(file date) · scans") for r in scans)
    nothing = client.get("/api/photos/search", params={"q": "a dog", "camera": "nikon"})
    assert nothing.status_code == 422 and nothing.json()["error"].startswith("no photo passes the filter")
    bad = client.get("/api/photos/search", params={"q": "a dog", "after": "June"})
    assert bad.status_code == 422 and "YYYY" in bad.json()["error"]


def test_feedback_moves_the_query_and_says_what_changed(served):
    client, database, _ = served
    first = [r["key"] for r in client.get("/api/photos/search", params={"q": "a dog", "k": 5}).json()["results"]]
    body = client.get("/api/feedback", params={"q": "a dog", "k": 5, "good": [first[4]], "bad": [first[0]]}).json()
    keys, _ = feedback_query(database, "a dog", good=[first[4]], bad=[first[0]], k=5)
    assert [r["key"] for r in body["results"]] == keys.tolist()
    assert body["entered"] == [k for k in keys.tolist() if k not in first]
    assert body["left"] == [k for k in first if k not in keys.tolist()]
    assert 0 < body["moved_cosine"] < 1 and body["results"][0]["caption"]
    assert client.get("/api/feedback", params={"q": "a dog"}).status_code == 404  # nothing marked
    assert client.get("/api/feedback", params={"q": "a dog", "good": "../etc/passwd"}).status_code == 404


def test_duplicates_view_and_the_page_loads_its_script(served):
    client, _, _ = served
    body = client.get("/api/duplicates").json()
    together = [g for g in body["groups"] if {"2020/IMG_0.JPG", "2020/IMG_0 copy.JPG"} <= {p["key"] for p in g["photos"]}]
    assert len(together) == 1 and body["near_threshold"] > 0.5
    assert client.get("/static/photos.js").status_code == 200
    assert '<script src="/static/photos.js">' in client.get("/").text


def test_a_coco_database_has_feedback_but_no_photo_routes():
    from semsearch import sample
    from semsearch.bundle import load_bundle

    _, text_encoder, database = load_bundle(sample.model_dir())
    client = TestClient(create_app(database, text_encoder))
    assert client.get("/api/photos/info").status_code == 404
    first = client.get("/api/search", params={"q": "a dog", "k": 4}).json()["results"]
    body = client.get("/api/feedback", params={"q": "a dog", "k": 4, "good": first[3]["key"]}).json()
    keys, _ = feedback_query(database, "a dog", good=[int(first[3]["key"])], k=4)
    assert [r["key"] for r in body["results"]] == [str(key) for key in keys.tolist()]
