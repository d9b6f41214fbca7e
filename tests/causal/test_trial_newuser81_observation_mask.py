"""An observation mask of the input's own shape, passed as ``attention_mask`` (irregularly sampled series: values
``[N, T, C]`` beside a mask ``[N, T, C]``, 1 where the entry was observed), is read entry by entry: the entries it
marks unobserved are never set by an intervention, get effect exactly 0 and are left out of the audits' summaries.
Before, a mask of any shape but ``[N, T]`` was passed to the model and otherwise ignored without a word: every
unobserved entry was set and given an effect, and the means counted them."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects

N, T, C = 6, 5, 3


class ReadsAll(nn.Module):
    """Reads every entry of ``values``, observed or not (forward-filled values, a GRU-D's input): a spy of which
    entries an intervention sets."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.arange(1.0, T * C + 1).view(T, C) / 10)

    def forward(self, values, attention_mask):
        s = (values * self.w).sum((1, 2))
        return torch.stack([s, -s], 1)


class ObservedOnly(nn.Module):
    """Reads the observed entries only (an mTAN's attention masked by the observation mask)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.arange(1.0, T * C + 1).view(T, C) / 10)

    def forward(self, values, attention_mask):
        s = (values * attention_mask * self.w).pow(2).sum((1, 2))
        return torch.stack([s, -s], 1)


def _series(seed=0):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(N, T, C, generator=g)
    mask = (torch.rand(N, T, C, generator=g) < 0.6).float()
    mask[:, 0] = 1.0
    return values, mask


def test_unobserved_entries_are_never_set():
    values, mask = _series()
    model = ReadsAll().eval()
    effects = input_effects(model, values, additional_forward_args={"attention_mask": mask}, target=0).view(N, T, C)
    assert bool((effects[mask == 0] == 0).all())  # before: w * x at every unobserved entry
    n, t, c = [int(i) for i in (mask == 1).nonzero()[7]]
    x = values.clone()
    x[n, t, c] = 0.0
    with torch.no_grad():
        by_hand = model(values, mask)[n, 0] - model(x, mask)[n, 0]
    assert torch.allclose(effects[n, t, c], by_hand, atol=1e-6)


def test_audit_means_leave_unobserved_entries_out():
    values, mask = _series(1)
    model = ObservedOnly().eval()
    args = {"attention_mask": mask}
    effects = input_effects(model, values, additional_forward_args=args, target=0).view(N, T, C)
    result = InputEffectAudit(target=0, ace_values=None).run(model, Probe(values, None, args))
    expected = effects[mask == 1].abs().mean()
    assert result.scalars["mean_abs_effect"] == pytest.approx(float(expected), rel=1e-5)  # before: diluted by zeros


def test_missing_mask_of_the_opposite_sense_is_refused():
    values, mask = _series(2)
    missing = 1 - mask  # 1 = missing, with zeros imputed there: the opposite of attention_mask's sense
    with pytest.raises(ValueError, match="attention_mask"):
        input_effects(ReadsAll().eval(), values * mask, additional_forward_args={"attention_mask": missing}, target=0)


class MaskNamed(nn.Module):
    """GRU-D's and mTAN's name for the observation mask: ``mask``."""

    def __init__(self):
        super().__init__()
        self.inner = ObservedOnly()

    def forward(self, values, mask, delta=None):
        return self.inner(values, mask)


def test_an_observation_mask_under_another_name_is_warned_of():
    values, mask = _series(3)
    delta = torch.rand(N, T, C)  # of the values' shape too, but no mask
    with pytest.warns(UserWarning, match=r"the forward argument 'mask' has the inputs' shape .* only `attention_mask`"):
        InputEffectAudit(target=0, ace_values=None).run(MaskNamed().eval(), Probe(values, None, {"mask": mask, "delta": delta}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # read as it is: nothing to say
        InputEffectAudit(target=0, ace_values=None).run(ObservedOnly().eval(), Probe(values, None, {"attention_mask": mask}))
        InputEffectAudit(target=0, ace_values=None).run(MaskNamed().eval(), Probe(values, None, {"mask": torch.ones_like(mask), "delta": delta}))


class StepLayers(nn.Module):
    """Hidden states ``[N, T, H]`` with a large bias: their padded steps hold large activations no intervention moves."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(C, 8)
        self.b = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)
        nn.init.constant_(self.a.bias, 5.0)

    def forward(self, values, attention_mask):
        real = attention_mask.reshape(*attention_mask.shape[:2], -1).amax(2)[..., None]  # [N, T, 1]
        h = self.b(torch.relu(self.a(values * real)))
        return self.head((h * real).sum(1) / real.sum(1))


def test_hidden_steps_of_an_observation_mask_follow_its_padding():
    from lightning_causal.causal import layer_causal_map

    values, _ = _series(4)
    lengths = torch.tensor([5, 3, 4, 2, 5, 3])
    steps = (torch.arange(T)[None] < lengths[:, None]).float()  # [N, T]: every entry of a real step observed
    values = values * steps[..., None]
    entries = steps[..., None].expand(N, T, C).contiguous()  # the same padding as an observation mask [N, T, C]
    maps = [layer_causal_map(StepLayers().eval(), values, additional_forward_args={"attention_mask": m}, layers=["a", "b"])
            for m in (steps, entries)]
    torch.testing.assert_close(maps[1].response, maps[0].response)  # before: the padded steps' activations counted
