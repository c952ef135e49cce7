"""Tests of semsearch.cnn.distributed: Ray Data gives the local path's descriptors, in order.

One local Ray cluster (``ray.init(num_cpus=2)``) for the module, shut down after it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
ray = pytest.importorskip("ray")

from semsearch import backbones
from semsearch.features import describe_files


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def paths(real_data: Path, tmp_path_factory) -> list:
    """The 239 real images, with an empty and a truncated file among them."""
    images = sorted((real_data / "coco" / "images").glob("*.jpg"))
    bad = tmp_path_factory.mktemp("bad")
    (bad / "empty.jpg").write_bytes(b"")
    (bad / "truncated.jpg").write_bytes(images[0].read_bytes()[:5000])
    return images[:100] + [bad / "empty.jpg"] + images[100:] + [bad / "truncated.jpg"]


def test_ray_engine_gives_the_local_descriptors(cluster, paths):
    backbone = backbones.load_backbone("efficientnet-lite0", device="cpu")
    local = describe_files(paths, backbone, batch_size=32, num_workers=0, progress=False)
    remote = describe_files(paths, backbone, batch_size=32, progress=False, engine="ray", concurrency=2)
    assert remote[1] == local[1] and len(remote[1]) == 239  # same files, same order
    assert [p for p, _ in remote[2]] == [str(paths[100]), str(paths[-1])] == [p for p, _ in local[2]]
    assert remote[2] == local[2]  # same reasons
    assert remote[0].shape == (239, 1280) and remote[0].dtype == np.float32
    np.testing.assert_allclose(remote[0], local[0], rtol=1e-6, atol=1e-6)
    print("max abs difference ray vs local:", float(np.abs(remote[0] - local[0]).max()))


def test_ray_engine_rejects_local_options(paths):
    with pytest.raises(TypeError, match=r"\['concurrency'\] are for engine='ray' only"):
        describe_files(paths[:1], "resnet18", concurrency=2)


def test_index_on_ray_writes_the_local_database(cluster, real_data, tmp_path):
    """`semsearch index --engine ray`: the same descriptors and embeddings as the local path."""
    import shutil

    from semsearch.photos.folder import PhotoDatabase, index_folder

    folder = tmp_path / "photos"
    folder.mkdir()
    for path in sorted((real_data / "coco" / "images").glob("*.jpg"))[:6]:
        shutil.copy(path, folder / f"holiday {path.stem[-4:]}.jpg")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    local = index_folder(folder, tmp_path / "local.npz", progress=False)
    on_ray = index_folder(folder, tmp_path / "ray.npz", progress=False, engine="ray", checkpoint_every=4)
    assert (on_ray.n_new, len(on_ray.failed)) == (local.n_new, len(local.failed)) == (6, 1)
    a, b = PhotoDatabase.load(tmp_path / "local.npz"), PhotoDatabase.load(tmp_path / "ray.npz")
    assert a.keys.tolist() == b.keys.tolist()
    np.testing.assert_allclose(a.descriptors, b.descriptors, atol=1e-5)
    np.testing.assert_allclose(a.vectors, b.vectors, atol=1e-5)
