"""A working model survives any failed save; two saves at once never mix.

Saves run in child processes (``os.fork``: the child has the test's imports, so each
costs milliseconds) that are killed with SIGKILL at every step of a save, or at random
times, or that save at the same moment as another child. After each, the folder must
load as the old bundle or the complete new one, every part from the same save.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

import semsearch.bundle as bundle
from semsearch.bundle import MANIFEST_FILE, check_bundle_target, load_bundle, read_info, save_bundle
from semsearch.database import ImageDatabase
from semsearch.errors import InputError, SaveConflictError
from semsearch.model import Autoembedder
from semsearch.text import TextEmbedder

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")

WORDS = ["dog", "cat", "frisbee", "beach", "a", "the"]
STEPS = ["locked", "staging-created", "model-written", "text-written", "database-written",
         "manifest-written", "old-moved-aside", "new-in-place", "old-removed"]
CONFLICT_EXIT = 3


def tiny_glove() -> KeyedVectors:
    kv = KeyedVectors(vector_size=5)
    kv.add_vectors(WORDS, np.random.default_rng(0).normal(size=(len(WORDS), 5)).astype(np.float32))
    return kv


GLOVE = tiny_glove()


def parts(marker: int, n_images: int = 50):
    """Model, text encoder and database that each carry ``marker`` (1 <= marker < 1000)."""
    model = Autoembedder(8, 5, seed=0)
    model.dense.weight.data[...] = marker
    text = TextEmbedder.fit(["a dog"] * marker + ["the cat", "a frisbee on the beach"], GLOVE)
    ids = marker * 100_000 + np.arange(n_images)
    vectors = np.random.default_rng(marker).normal(size=(n_images, 5))
    return model, text, ImageDatabase(ids, vectors, text)


def markers_of(folder: Path):
    """(model, text, database, info) markers of the bundle in ``folder``."""
    model, text, database = load_bundle(folder, GLOVE)
    weight = model.dense.weight.data
    assert (weight == weight.flat[0]).all()
    text_marker = [m for m in range(1, 1000) if _idf_matches(text, m)]
    return int(weight.flat[0]), text_marker[0] if text_marker else None, int(database.keys[0] // 100_000), \
        read_info(folder)["info"]["marker"]


_TEXT_WEIGHTS = {}


def _idf_matches(text: TextEmbedder, marker: int) -> bool:
    if marker not in _TEXT_WEIGHTS:
        _TEXT_WEIGHTS[marker] = parts(marker, 1)[1].word_weights
    return text.word_weights == _TEXT_WEIGHTS[marker]


def in_child(action) -> int:
    """Run ``action()`` in a forked child; return its exit code, or -signal if killed."""
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 0
        try:
            action()
        except SaveConflictError:
            code = CONFLICT_EXIT
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def save_killed_at(folder: Path, marker: int, step: str) -> None:
    def hook(name):
        if name == step:
            os.kill(os.getpid(), signal.SIGKILL)

    bundle._step = hook
    save_bundle(folder, *parts(marker), info={"marker": marker})


def leftovers(parent: Path):
    return sorted(p.name for p in parent.iterdir() if ".tmp-" in p.name or ".old-" in p.name)


# ----------------------------------------------------------------------------- kill -9


@pytest.mark.parametrize("step", STEPS)
def test_kill_at_each_step_of_a_resave_leaves_old_or_new(tmp_path, step):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})
    assert in_child(lambda: save_killed_at(folder, 2, step)) == -signal.SIGKILL
    committed = STEPS.index(step) >= STEPS.index("new-in-place")
    expected = 2 if committed else 1
    assert markers_of(folder) == (expected,) * 4
    # the next save recovers and cleans every leftover of the killed one
    save_bundle(folder, *parts(3), info={"marker": 3})
    assert markers_of(folder) == (3,) * 4
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("step", ["locked", "staging-created", "model-written", "manifest-written", "new-in-place"])
def test_kill_during_a_first_save_leaves_nothing_loadable_or_the_new(tmp_path, step):
    folder = tmp_path / "model"
    assert in_child(lambda: save_killed_at(folder, 2, step)) == -signal.SIGKILL
    if step == "new-in-place":
        assert markers_of(folder) == (2,) * 4
    else:
        with pytest.raises(FileNotFoundError, match="model folder not found"):
            load_bundle(folder, GLOVE)


def test_kill_at_random_times_during_resaves(tmp_path):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1, 20_000), info={"marker": 1})
    rng = random.Random(0)
    done = {1}
    for round_ in range(12):
        marker = round_ + 2
        pid = os.fork()
        if pid == 0:
            try:
                save_bundle(folder, *parts(marker, 20_000), info={"marker": marker})
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0.0, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        found = markers_of(folder)
        assert len(set(found)) == 1 and found[0] in done | {marker}
        done.add(found[0])


def test_killed_real_subprocess_keeps_the_old_model(tmp_path):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})
    script = f"""
import os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import semsearch.bundle as bundle
from test_bundle_safety import parts
bundle._step = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == "old-moved-aside" else None
bundle.save_bundle({str(folder)!r}, *parts(2), info={{"marker": 2}})
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parent.parent, capture_output=True)
    assert run.returncode == -signal.SIGKILL, run.stderr.decode()[-2000:]
    assert not folder.exists()  # killed between the two renames: the old bundle is aside ...
    assert markers_of(folder) == (1,) * 4  # ... and loads from there


# ----------------------------------------------------------------------------- failures Python sees


@pytest.mark.parametrize("step", STEPS[:-1])
def test_an_exception_at_any_step_leaves_the_old_model_and_no_temporary_files(tmp_path, monkeypatch, step):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})

    def fail(name):
        if name == step:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(bundle, "_step", fail)
    with pytest.raises(OSError, match="No space left"):
        save_bundle(folder, *parts(2), info={"marker": 2})
    committed = STEPS.index(step) >= STEPS.index("new-in-place")
    assert markers_of(folder) == ((2,) if committed else (1,)) * 4
    assert [p for p in leftovers(tmp_path) if ".tmp-" in p] == []


def test_a_part_that_fails_to_save_leaves_the_old_model(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})
    model, text, database = parts(2)

    def full_disk(path):
        Path(path).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(database, "save", full_disk)
    with pytest.raises(OSError):
        save_bundle(folder, model, text, database, info={"marker": 2})
    assert markers_of(folder) == (1,) * 4
    assert leftovers(tmp_path) == []


def test_info_that_is_not_json_fails_before_anything_is_written(tmp_path):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})
    with pytest.raises(TypeError):
        save_bundle(folder, *parts(2), info={"marker": object()})
    assert markers_of(folder) == (1,) * 4
    assert leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- two saves at once


def test_a_save_while_another_holds_the_lock_fails_clearly(tmp_path):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})
    started = tmp_path / "started"

    def slow_save():
        def pause(name):
            if name == "model-written":
                started.touch()
                time.sleep(1.0)

        bundle._step = pause
        save_bundle(folder, *parts(2), info={"marker": 2})

    pid = os.fork()
    if pid == 0:
        try:
            slow_save()
        finally:
            os._exit(0)
    deadline = time.time() + 20
    while not started.exists() and time.time() < deadline:
        time.sleep(0.01)
    with pytest.raises(SaveConflictError, match="another process is saving a model to .*model"):
        save_bundle(folder, *parts(3), info={"marker": 3})
    os.waitpid(pid, 0)
    assert markers_of(folder) == (2,) * 4


def test_pairs_of_concurrent_saves_never_mix(tmp_path):
    folder = tmp_path / "model"
    for pair in range(10):
        a, b = 2 * pair + 1, 2 * pair + 2
        read_end, write_end = os.pipe()
        pids = []
        for marker in (a, b):
            pid = os.fork()
            if pid == 0:
                code = 0
                try:
                    os.close(write_end)
                    os.read(read_end, 1)  # both start together
                    save_bundle(folder, *parts(marker, 5_000), info={"marker": marker})
                except SaveConflictError:
                    code = CONFLICT_EXIT
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            pids.append(pid)
        os.close(read_end)
        os.write(write_end, b"go")
        os.close(write_end)
        codes = [os.WEXITSTATUS(os.waitpid(pid, 0)[1]) for pid in pids]
        assert set(codes) <= {0, CONFLICT_EXIT} and 0 in codes, codes
        found = markers_of(folder)
        assert len(set(found)) == 1, f"pair {pair}: a mix {found}"
        winners = {m for m, c in zip((a, b), codes) if c == 0}
        assert found[0] in winners
    assert leftovers(tmp_path) == []


def test_reading_while_saving_always_gives_one_whole_bundle(tmp_path):
    folder = tmp_path / "model"
    save_bundle(folder, *parts(1, 2_000), info={"marker": 1})
    pid = os.fork()
    if pid == 0:
        try:
            for marker in range(2, 30):
                save_bundle(folder, *parts(marker, 2_000), info={"marker": marker})
        finally:
            os._exit(0)
    seen = set()
    while True:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        found = markers_of(folder)[:3]  # the parts load_bundle read together (info is read apart)
        assert len(set(found)) == 1, found
        seen.add(found[0])
        if finished:
            break
    assert markers_of(folder) == (29,) * 4
    assert len(seen) > 1  # the reads really overlapped the saves


def _mid_swap(tmp_path, request):
    """The state between a save's two renames: no folder, the old bundle (1) set aside, the new one (2)
    staged, and the save's lock held (by a save still running, not a killed one) until the test ends."""
    import fcntl

    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})
    save_bundle(tmp_path / "new", *parts(2), info={"marker": 2})
    aside, staged = tmp_path / ".model.old-test", tmp_path / ".model.tmp-test"
    lock = os.open(tmp_path / ".model.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    request.addfinalizer(lambda: os.close(lock))
    os.rename(folder, aside)
    os.rename(tmp_path / "new", staged)
    return folder, aside, staged


def test_reading_between_the_two_renames_gives_the_old_bundle(tmp_path, request):
    folder, aside, staged = _mid_swap(tmp_path, request)
    assert markers_of(folder) == (1,) * 4


def test_reading_when_the_set_aside_bundle_vanishes_mid_read_gives_the_new_one(tmp_path, request, monkeypatch):
    """The flaky race, made deterministic: the save finishes (new in place, old removed) while
    load_bundle reads the set-aside old folder; it must read again, not fail."""
    import shutil

    folder, aside, staged = _mid_swap(tmp_path, request)
    real_load_folder, calls = bundle._load_folder, []

    def load_folder_while_the_save_finishes(where, shown, glove, model_class):
        calls.append(where)
        if len(calls) == 1:
            assert where == aside  # the reader found the old bundle set aside ...
            os.rename(staged, folder)  # ... and the save completes under it
            shutil.rmtree(aside)
        return real_load_folder(where, shown, glove, model_class)

    monkeypatch.setattr(bundle, "_load_folder", load_folder_while_the_save_finishes)
    model, _, database = load_bundle(folder, GLOVE)
    assert calls == [aside, folder]
    assert model.dense.weight.data.flat[0] == 2 and database.keys[0] // 100_000 == 2


def test_reading_when_the_folder_appears_after_a_miss_retries(tmp_path, request, monkeypatch):
    folder, aside, staged = _mid_swap(tmp_path, request)
    import shutil

    real_resolve, calls = bundle._resolve, []

    def resolve_then_finish_the_save(directory):
        calls.append(directory)
        if len(calls) == 1:  # the reader looked, found nothing complete yet ...
            shutil.rmtree(aside)  # ... (the old one is gone) ...
            return directory
        if len(calls) == 2:
            os.rename(staged, folder)  # ... and then the new one arrives
        return real_resolve(directory)

    monkeypatch.setattr(bundle, "_resolve", resolve_then_finish_the_save)
    assert load_bundle(folder, GLOVE)[0].dense.weight.data.flat[0] == 2
    assert len(calls) >= 2


def test_a_missing_folder_with_no_save_under_way_fails_at_once(tmp_path, monkeypatch):
    real_resolve, calls = bundle._resolve, []
    monkeypatch.setattr(bundle, "_resolve", lambda directory: calls.append(directory) or real_resolve(directory))
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_bundle(tmp_path / "nothing", GLOVE)
    assert len(calls) == 1  # no retrying when no save is under way


# ----------------------------------------------------------------------------- what is replaced


def test_a_folder_with_other_files_is_refused_not_deleted(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(InputError, match="photos holds files that are not part of a semsearch model \\(holiday.jpg\\)"):
        save_bundle(folder, *parts(1), info={"marker": 1})
    assert (folder / "holiday.jpg").read_bytes() == b"precious"


def test_an_empty_folder_is_used(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    save_bundle(folder, *parts(4), info={"marker": 4})
    assert markers_of(folder) == (4,) * 4


def test_an_empty_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="the model folder name is empty"):
        save_bundle("", *parts(1))
    assert list(tmp_path.iterdir()) == []


def test_check_bundle_target_before_training(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="is not a folder"):
        check_bundle_target(tmp_path / "file")
    with pytest.raises(InputError, match="is a file, not a folder"):
        check_bundle_target(tmp_path / "file" / "model")
    assert check_bundle_target(tmp_path / "new" / "model") == tmp_path / "new" / "model"
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_save_through_a_symlink_replaces_the_target(tmp_path):
    real = tmp_path / "real"
    save_bundle(real, *parts(1), info={"marker": 1})
    link = tmp_path / "link"
    link.symlink_to(real)
    save_bundle(link, *parts(2), info={"marker": 2})
    assert link.is_symlink() and markers_of(real) == (2,) * 4


def test_manifest_is_last_and_lists_what_was_written(tmp_path):
    folder = save_bundle(tmp_path / "model", *parts(5), info={"marker": 5})
    manifest = read_info(folder)
    assert sorted(manifest["files"]) == ["database.npz", "model.npz", "text.json", "text_vectors.npz"]
    assert (folder / MANIFEST_FILE).is_file()


def test_read_info_tries_again_when_a_save_swaps_the_folder_under_it(tmp_path, request, monkeypatch):
    """read_info found the folder, then a save moved it aside before the manifest was opened: it must
    look again (as load_bundle does), not fail with 'no bundle.json' (seen once in CI under load)."""
    import fcntl

    from semsearch import bundle

    folder = tmp_path / "model"
    save_bundle(folder, *parts(1), info={"marker": 1})
    save_bundle(tmp_path / "new", *parts(2), info={"marker": 2})
    lock = os.open(tmp_path / ".model.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)  # the save is still running
    request.addfinalizer(lambda: os.close(lock))
    real_resolve, calls = bundle._resolve, []

    def resolve_then_swap(directory):
        found = real_resolve(directory)
        calls.append(found)
        if len(calls) == 1:  # the save's first rename lands right after the folder was found
            os.rename(folder, tmp_path / ".model.old-test")
            os.rename(tmp_path / "new", tmp_path / ".model.tmp-test")
        return found

    monkeypatch.setattr(bundle, "_resolve", resolve_then_swap)
    assert read_info(folder)["info"]["marker"] == 1  # the old bundle, set aside: still the model
    assert calls[0] == folder and calls[-1] == tmp_path / ".model.old-test"
