"""An intervention that sets a whole window to one value under RevIN-style instance normalisation without an eps gives
NaN effects; the note (and the warning that repeats it) names that cause and the way out, one group per step
(newuser118's forecaster trial: the note named diverged models, float16 and ruled-out classes only)."""

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe

T = 8


class _RevIN(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(T, 2)

    def forward(self, x):  # [N, T] -> [N, 2], normalised per window without an eps
        mu, sd = x.mean(1, keepdim=True), x.std(1, keepdim=True)
        return self.net((x - mu) / sd) * sd + mu


def _probe():
    return Probe(torch.randn(6, T, generator=torch.Generator().manual_seed(0)), torch.randn(6, 2))


def test_whole_window_group_names_the_normalisation():
    result = InputEffectAudit(feature_mask=torch.zeros(1, T, dtype=torch.long), target=0, ace_values=None).run(_RevIN(), _probe())
    note = " ".join(result.meta["notes"])
    assert "not finite in samples [0, 1, 2, 3, 4, 5] of 6" in note
    assert "RevIN's per-window std without an eps" in note and "one per step" in note


def test_one_group_per_step_is_finite():
    result = InputEffectAudit(feature_mask=torch.arange(T).reshape(1, T), target=0, ace_values=None).run(_RevIN(), _probe())
    assert torch.isfinite(torch.tensor(result.scalars["mean_abs_effect"]))
