"""ACE / interventional expectations of a model of two inputs of different ranks, an image
``[N, 1, 8, 8]`` beside a table ``[N, 5]``: the value set per row was shaped for the first input
only, so the table received a 4-D value (a RuntimeError inside the model, or, with the table
first, a value broadcast across the image). Checked against a float64 do-loop by hand."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import average_causal_effect, interventional_expectations


class ImageTab(nn.Module):
    def __init__(self, image_first: bool = True):
        super().__init__()
        self.image_first = image_first
        self.conv = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.tab = nn.Sequential(nn.Linear(5, 6), nn.ReLU())
        self.head = nn.Linear(12 + 6, 3)

    def forward(self, a, b):
        image, tab = (a, b) if self.image_first else (b, a)
        return self.head(torch.cat([self.conv(image), self.tab(tab)], 1))


def quadrants() -> torch.Tensor:
    mask = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    mask[..., :4, 4:] = 1
    mask[..., 4:, :4] = 2
    mask[..., 4:, 4:] = 3
    return mask


def brute_mu(model, image, tab, mask, values, image_first):
    """mu_g(alpha) [9, K] by hand: groups 0-3 the image's quadrants, 4-8 the table's columns."""
    call = (lambda i, t: model(i, t)) if image_first else (lambda i, t: model(t, i))
    mu = torch.zeros(9, values.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for k, v in enumerate(values):
            for g in range(4):
                i2 = image.clone()
                i2[(mask == g).expand_as(i2)] = v
                mu[g, k] = call(i2, tab)[:, 1].mean()
            for j in range(5):
                t2 = tab.clone()
                t2[:, j] = v
                mu[4 + j, k] = call(image, t2)[:, 1].mean()
    return mu


@pytest.mark.parametrize("image_first", [True, False])
@pytest.mark.parametrize("n", [5, 8])  # 8 rows: the table-first value [R, 1] broadcast against the image's 8 x 8
def test_ace_of_an_image_beside_a_table_equals_the_do_loop(image_first, n):
    torch.manual_seed(0)
    model = ImageTab(image_first).double().eval()
    image = torch.randn(n, 1, 8, 8, dtype=torch.float64)
    tab = torch.randn(n, 5, dtype=torch.float64)
    mask, tab_mask = quadrants(), torch.arange(4, 9).unsqueeze(0)
    values = torch.tensor([-1.0, 0.5, 2.0], dtype=torch.float64)
    inputs, masks = ((image, tab), (mask, tab_mask)) if image_first else ((tab, image), (tab_mask, mask))
    mu, grid = interventional_expectations(model, inputs, masks, values, target=1, max_batch_size=7)
    ref = brute_mu(model, image, tab, mask, values, image_first)
    torch.testing.assert_close(mu, ref, rtol=0, atol=1e-12)
    ace = average_causal_effect(model, inputs, masks, values, target=1)
    torch.testing.assert_close(ace, ref - ref.mean(1, keepdim=True), rtol=0, atol=1e-12)


def test_quantile_ace_of_a_table_column_beside_an_image():
    torch.manual_seed(1)
    model = ImageTab().double().eval()
    image = torch.randn(6, 1, 8, 8, dtype=torch.float64)
    tab = torch.randn(6, 5, dtype=torch.float64)
    ace = average_causal_effect(model, (image, tab), (quadrants(), torch.arange(4, 9).unsqueeze(0)), target=1, num_values=3)
    values = torch.quantile(tab[:, 2], torch.linspace(0.05, 0.95, 3, dtype=torch.float64))
    ref = brute_mu(model, image, tab, quadrants(), values, True)[6]
    torch.testing.assert_close(ace[6], ref - ref.mean(), rtol=0, atol=1e-12)
