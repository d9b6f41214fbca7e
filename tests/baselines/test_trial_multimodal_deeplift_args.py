"""DeepLift on the image of ``model(image, tab)`` with the table as a forward argument: Captum hooks
the input of every nonlinearity for its gradient, and under the frozen parameters of the
attribution the table's branch held no tensor that requires grad, so Captum failed on "cannot
register a hook on a tensor that doesn't require gradient" (CaptumBaseline too). Checked against
plain Captum on the unfrozen model."""

import pytest
import torch
from captum.attr import DeepLift
from torch import nn

from lightning_causal.baselines.captum_methods import attribute


class ImageTab(nn.Module):
    def __init__(self, raw_relu: bool = False):
        super().__init__()
        self.raw_relu = raw_relu
        self.conv = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.tab = nn.Sequential(nn.Linear(5, 4), nn.ReLU())
        self.relu = nn.ReLU()
        self.head = nn.Linear(8 + 4 + 5, 2)

    def forward(self, image, tab):
        raw = self.relu(tab) if self.raw_relu else tab  # a nonlinearity reading the forward argument itself
        return self.head(torch.cat([self.conv(image), self.tab(tab), raw], 1))


@pytest.mark.parametrize("raw_relu", [False, True])
@pytest.mark.parametrize("keyword", [False, True])
def test_deeplift_of_the_image_with_the_table_as_forward_argument(raw_relu, keyword):
    torch.manual_seed(0)
    model = ImageTab(raw_relu).double().eval()
    image, tab = torch.randn(6, 1, 8, 8, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    args = {"tab": tab} if keyword else (tab,)
    got = attribute(model, image, "DeepLift", target=1, additional_forward_args=args)
    reference = DeepLift(model).attribute(image.clone().requires_grad_(), target=1,
                                          additional_forward_args=(tab.clone().requires_grad_(),))
    torch.testing.assert_close(got, reference.detach(), rtol=0, atol=1e-12)
    assert not tab.requires_grad and all(p.requires_grad for p in model.parameters()) and all(p.grad is None for p in model.parameters())
