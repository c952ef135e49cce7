"""Tests of semsearch.backbones: records, the one check, and where models meet descriptors."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semsearch.backbones import BACKBONES, DEFAULT_BACKBONE, backbone_info, check_same_backbone
from semsearch.database import ImageDatabase
from semsearch.descriptors import Descriptors
from semsearch.model import Autoembedder

RESNET, EFFNET = backbone_info("resnet18"), backbone_info("efficientnet-lite0")


def descriptors(n: int, dim: int, backbone) -> Descriptors:
    rng = np.random.default_rng(dim)
    return Descriptors(dict(zip(range(1, n + 1), rng.random((n, dim)))), backbone=backbone)


def test_backbone_info_needs_no_torch():
    code = ("import sys; from semsearch.backbones import backbone_info; "
            "print(backbone_info('efficientnet-lite0')['dim'], 'torch' in sys.modules)")
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.split() == ["1280", "False"], done.stderr


def test_backbone_info_values():
    assert BACKBONES == ("resnet18", "efficientnet-lite0") and DEFAULT_BACKBONE == "efficientnet-lite0"
    assert (RESNET["backbone"], RESNET["dim"], EFFNET["dim"]) == ("resnet18", 512, 1280)
    assert "mean 0.5 std 0.5" in EFFNET["preprocessing"] and "centre-crop 224" in RESNET["preprocessing"]
    assert backbone_info("resnet18", pretrained=False, seed=3)["weights"] == "random (seed 3)"
    with pytest.raises(ValueError, match="unknown backbone 'resnet50'"):
        backbone_info("resnet50")


def test_check_same_backbone():
    check_same_backbone(RESNET, dict(RESNET), "x")
    check_same_backbone(None, RESNET, "x")  # unknown: nothing to compare
    with pytest.raises(ValueError, match=r"^searching: the descriptors come from efficientnet-lite0 \(1280-d\), "
                                         r"but the model expects resnet18 \(512-d\) descriptors"):
        check_same_backbone(RESNET, EFFNET, "searching")
    random = backbone_info("resnet18", pretrained=False)
    with pytest.raises(ValueError, match=r"resnet18 \(512-d\), random \(seed 0\) weights"):
        check_same_backbone(RESNET, random, "x")


def test_model_saves_its_backbone(tmp_path):
    model = Autoembedder(1280, seed=0, backbone="efficientnet-lite0")
    model.save(tmp_path / "m.npz")
    assert Autoembedder.load(tmp_path / "m.npz").backbone_info == EFFNET
    Autoembedder(4, seed=0).save(tmp_path / "old.npz")
    assert Autoembedder.load(tmp_path / "old.npz").backbone_info is None
    with pytest.raises(ValueError, match="input_dim=512, but backbone efficientnet-lite0 makes 1280-d"):
        Autoembedder(512, backbone="efficientnet-lite0")


def test_database_refuses_another_backbone_and_keeps_its_own(tmp_path):
    model = Autoembedder(512, seed=0, backbone="resnet18")
    fake_effnet = descriptors(5, 512, {"backbone": "efficientnet-lite0-cropped", "dim": 512})
    with pytest.raises(ValueError, match=r"building the database: .*efficientnet-lite0-cropped \(512-d\).*resnet18 \(512-d\)"):
        ImageDatabase.build(model, fake_effnet)
    database = ImageDatabase.build(model, descriptors(5, 512, "resnet18"))
    np.testing.assert_allclose(database.vectors, model.embed(descriptors(5, 512, "resnet18").vectors), rtol=1e-6)
    database.save(tmp_path / "db.npz")
    assert ImageDatabase.load(tmp_path / "db.npz").backbone_info == RESNET


def test_evaluate_refuses_another_backbone(real_data):
    from semsearch.coco import CocoCaptions
    from semsearch.dataset import join
    from semsearch.evaluation import evaluate

    coco = CocoCaptions.load(real_data / "coco/annotations/captions_val2017.json")
    data = join(coco, Descriptors.load(real_data / "descriptors/effnet_lite0_coco_mini.pkl"), warn=False)
    model = Autoembedder(1280, seed=0, backbone={"backbone": "mobilenet_v2", "dim": 1280})
    with pytest.raises(ValueError, match=r"evaluating: the descriptors come from efficientnet-lite0.*mobilenet_v2"):
        evaluate(model, data, None, data.image_ids[:10])
