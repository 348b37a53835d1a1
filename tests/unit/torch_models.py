"""Importable nn.Module classes for the torch flavor tests (state-dict models need a module path)."""

from __future__ import annotations

import torch
from torch import nn


class TabularNet(nn.Module):
    """A small MLP for rows of numbers: logits for a classifier, one value for a regressor."""

    def __init__(self, n_in: int, n_out: int, hidden: int = 8) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(n_in, hidden), nn.ReLU(), nn.Dropout(0.1), nn.Linear(hidden, n_out)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class TinyConvNet(nn.Module):
    """An image classifier for (n, 1, 8, 8) inputs, like scikit-learn's digits."""

    def __init__(self, n_classes: int = 10) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, kernel_size=3)
        self.norm = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 6 * 6, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(torch.relu(self.norm(self.conv(x))), 1))
