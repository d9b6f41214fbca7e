"""A model of two inputs, ``model(image [N, 1, H, W], tab [N, 5])``, and the recipe's wrapper that takes
the table first (docs/recipes.md, "Models of several inputs"), shared by the multimodal trial tests."""

import torch
from torch import nn


class ImageTab(nn.Module):
    """A small conv branch on the image, concatenated with the 5 table columns, then a linear head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Linear(8 + 5, 2)

    def forward(self, image, tab):
        return self.head(torch.cat([self.conv(image), tab], 1))


class TabFirst(nn.Module):
    """The recipe's wrapper: the table first, the image a forward argument."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, tab, image):
        return self.model(image, tab)
