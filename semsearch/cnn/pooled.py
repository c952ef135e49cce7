"""EfficientNet's feature map averaged to one vector (imports torch: load it lazily)."""
from __future__ import annotations

import torch


class PooledFeatures(torch.nn.Module):
    """``network.extract_features(x)`` ``(B, 1280, 7, 7)``, averaged over the grid: ``(B, 1280)``."""

    def __init__(self, network: torch.nn.Module):
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.extract_features(x).mean((2, 3))
