"""Review of the change c77cd2b1: an ``attention_mask`` of the input's own shape is read entry by entry as an
irregularly sampled series' observation mask, but a sequence model's attention matrices ``[N, T, T]`` beside
embeddings ``[N, T, C]`` whose width ``C`` equals ``T`` by chance have that shape too. Read so, a causal mask's upper
triangle became 'unobserved' entries: never set, effect 0, left out of the means (in silence; 120 of 288 entries of
the test's model). Such masks (every sample's triangular, or symmetric) are not read entry by entry, as before
c77cd2b1; a random observation mask of a square series still is."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import padding_positions

N, T = 5, 4


class Attention(nn.Module):
    """One masked self-attention over embeddings ``[N, T, T]`` (width ``T``), the mask of attention matrices."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.q, self.k, self.head = nn.Linear(T, T), nn.Linear(T, T), nn.Linear(T, 2)

    def forward(self, x, attention_mask):
        s = (self.q(x) @ self.k(x).transpose(1, 2)).masked_fill(attention_mask == 0, -1e9)
        return self.head((s.softmax(-1) @ x).mean(1))


def _embeddings():
    return torch.randn(N, T, T, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def test_a_causal_mask_of_the_inputs_shape_is_no_observation_mask():
    x, model = _embeddings(), Attention().double().eval()
    causal = torch.ones(T, T).tril().expand(N, T, T)
    effects = input_effects(model, x, additional_forward_args={"attention_mask": causal}, target=0).view(N, T, T)
    moved = x.clone()
    moved[2, 0, 3] = 0.0  # above the diagonal: the causal mask's 0, not an unobserved entry
    with torch.no_grad():
        by_hand = model(x, causal)[2, 0] - model(moved, causal)[2, 0]
    assert abs(float(by_hand)) > 1e-4
    torch.testing.assert_close(effects[2, 0, 3], by_hand)  # before: exactly 0, never set
    result = InputEffectAudit(target=0, ace_values=None).run(model, Probe(x, None, {"attention_mask": causal}))
    assert abs(result.scalars["mean_abs_effect"] - float(effects.abs().mean())) < 1e-9  # every entry counted


def test_pairs_of_real_positions_are_no_observation_mask():
    real = (torch.arange(T)[None] < torch.tensor([4, 2, 3, 4, 1])[:, None]).double()
    pairs = real[:, :, None] * real[:, None, :]  # symmetric
    pad = padding_positions(_embeddings() * real[..., None], {"attention_mask": pairs})  # the keys no query reads: padded steps
    assert pad.shape == (N, T, 1) and torch.equal(pad[..., 0], real == 0)


def test_an_observation_mask_of_a_square_series_is_still_read():
    mask = (torch.rand(N, T, T, generator=torch.Generator().manual_seed(1)) < 0.6).double()
    mask[:, 0] = 1.0
    pad = padding_positions(_embeddings() * mask, {"attention_mask": mask})
    assert pad is not None and torch.equal(pad, mask == 0)


def test_a_causal_mask_under_another_name_is_not_warned_of():
    class Named(Attention):
        def forward(self, x, mask):
            return super().forward(x, mask)

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # before: 'has the inputs' shape ... name the parameter attention_mask'
        InputEffectAudit(target=0, ace_values=None).run(
            Named().double().eval(), Probe(_embeddings(), None, {"mask": torch.ones(T, T).tril().expand(N, T, T)}))


class Flags(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(1, 2)

    def forward(self, values, attention_mask):
        return self.lin((values * attention_mask).mean(1))


def test_observations_all_zero_beside_a_mean_imputed_is_no_mask_of_the_opposite_sense():
    """A rare binary flag, mostly missing and imputed with its mean (0.05) where unobserved: on the callback's 2-row
    dry run every observed value may be 0, which _check_padding_sense alone read as a mask of torch's sense (refused);
    one value imputed per channel is no observation. Observations there (values that vary) are still refused."""
    mask = torch.zeros(2, 16, 1)
    mask[:, ::5] = 1.0
    values = torch.where(mask > 0, 0.0, 0.05)
    effects = input_effects(Flags().eval(), values, additional_forward_args={"attention_mask": mask}, target=0, baseline=1.0)
    assert bool((effects.view(2, 16, 1)[mask == 0] == 0).all()) and bool((effects.view(2, 16, 1)[mask == 1] != 0).all())
    observed = torch.linspace(-1, 1, 32).view(2, 16, 1) * (1 - mask)  # observations where the mask is 0: its opposite
    with pytest.raises(ValueError, match="attention_mask"):
        input_effects(Flags().eval(), observed, additional_forward_args={"attention_mask": mask}, target=0)
