"""The bars of a float table explaining one output are coloured by the sign of the covariance of each column's values
with its effects (red: a higher value raises the output). A category code kept in a float column and cast inside the
model (``nn.Embedding(x[:, j].long())``) is nominal: its codes' order (alphabetical levels) is no "higher value", yet
the bar was red or blue, a direction read off the codes' numbering. It is grey now (no direction), as a group of
several columns is; the numeric columns keep their colours."""

import torch
from matplotlib.colors import to_rgba
from torch import nn

from lightning_causal import InputEffectAudit, Probe
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


class Scorer(nn.Module):  # one output: age raises it, the occupation code (6 levels) through an embedding
    def __init__(self):
        super().__init__()
        self.occupation = nn.Embedding(6, 1)
        with torch.no_grad():
            self.occupation.weight.copy_(torch.arange(6.0)[:, None])  # the codes' order happens to raise the output

    def forward(self, x):
        return 2 * x[:, :1] + self.occupation(x[:, 1].long())


def test_a_code_column_bar_has_no_direction():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(64, 1, generator=g), torch.randint(0, 6, (64, 1), generator=g).float()], 1)
    result = InputEffectAudit(feature_names=["age", "occupation"], ace_values=None).run(Scorer(), Probe(x))
    assert result.meta["code_elements"] == [1]
    fig = TensorBoardRenderer().figures([result], x)["causal/input_effect/maps/top_features"]
    ax = fig.axes[0]
    colour = {t.get_text(): p.get_facecolor() for t, p in zip(ax.get_yticklabels(), ax.patches)}
    assert colour["occupation"] == to_rgba("tab:gray")
    assert colour["age"] == to_rgba("tab:red")
    assert "grey: no direction" in ax.get_xlabel()
