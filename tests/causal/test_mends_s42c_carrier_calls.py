"""The carriers' count of their layer's calls (final read A, F2 and F3). ``max_batch_size=1`` reads the factual and
counterfactual activations with each sample alone, where a layer may run twice though the probe's passes ran it once
(a refinement applied where the batch's column 0 is all 1: each such sample alone): its last call was read in silence.
And a layer run once on ``x`` but not at all on ``x_cf`` (skipped where the batch's column 0 is all 1) had the factual
activation read as the counterfactual one (capture keeps the factual pass's call): every carrier exactly 0 while the
flip moves the output by up to 0.074, in silence. Both are refused now; a layer run once everywhere keeps the hand
values with ``max_batch_size=1`` too."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, carrier_unit_effects


class _Branched(nn.Module):
    """``mid`` on ``inp``'s output; ``mode="refine"``: again on its own where the batch's column 0 is all 1;
    ``mode="skip"``: not at all there; ``mode="plain"``: once always."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.inp, self.mid, self.act, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        all_one = bool((x[:, 0] > 0.5).all())
        h = self.inp(x)
        if not (self.mode == "skip" and all_one):
            h = self.act(self.mid(h))
        if self.mode == "refine" and all_one:
            h = self.act(self.mid(h))
        return self.head(h)


def _probe(group: torch.Tensor | float) -> torch.Tensor:
    x = torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[:, 0] = group
    return x


def _no_hooks(model: nn.Module) -> bool:
    return not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_a_layer_run_twice_by_a_sample_alone_is_refused_under_max_batch_size_1() -> None:
    model = _Branched("refine").double().eval()
    x = _probe((torch.arange(8) % 2).double())  # mixed groups: the probe's passes run mid once, each x0=1 row alone twice
    with pytest.raises(ValueError, match=r"'mid' to run once per forward pass for its carrier units, but it runs 2 "
                                         r"times on sample 1 run alone \(max_batch_size=1\), where the probe's passes"):
        carrier_unit_effects(model, x, AttributeFlip(0), "mid", target=1, max_batch_size=1)
    with pytest.raises(ValueError, match=r"runs 2 times on sample 1 run alone"):
        FairnessAudit(AttributeFlip(0), layers=["mid"], target=1).run(model, Probe(x), max_batch_size=1)
    assert _no_hooks(model)
    x = _probe(0.2 * (torch.arange(8) % 2).double())  # every sample alone runs mid once, and so does each pass
    to_one = lambda v: torch.cat([torch.where(v[:, :1] == 0, 1.0, v[:, :1]), v[:, 1:]], 1)  # noqa: E731
    with pytest.raises(ValueError, match=r"runs 2 times on counterfactual sample 0 run alone \(max_batch_size=1\)"):
        carrier_unit_effects(model, x, to_one, "mid", target=1, max_batch_size=1)  # its even rows at 1 alone: twice


def test_a_layer_the_counterfactual_pass_skips_is_refused() -> None:
    model, x = _Branched("skip").double().eval(), _probe(0.0)  # once on x, not at all on its flip
    with torch.no_grad():
        x_cf = x.clone()
        x_cf[:, 0] = 1.0
        assert float((model(x_cf).softmax(1) - model(x).softmax(1)).abs().max()) > 0.05  # the flip moves the output
    with pytest.raises(ValueError, match=r"'mid' to run once per forward pass for its carrier units, but it does not "
                                         r"run on the counterfactual inputs, where it runs once on the factual ones"):
        carrier_unit_effects(model, x, AttributeFlip(0), "mid", target=1)
    with pytest.raises(ValueError, match=r"does not run on the counterfactual inputs"):
        FairnessAudit(AttributeFlip(0), layers=["mid"], target=1).run(model, Probe(x))
    assert _no_hooks(model)


def test_a_layer_run_once_everywhere_keeps_the_hand_values_alone() -> None:
    model, x = _Branched("plain").double().eval(), _probe((torch.arange(8) % 2).double())
    x_cf = x.clone()
    x_cf[:, 0] = 1.0 - x[:, 0]
    with torch.no_grad():
        p = model(x).softmax(1)[:, 1]
        h, h_cf = model.mid(model.inp(x)), model.mid(model.inp(x_cf))
        hand = torch.stack([model.head(model.act(h.index_copy(1, torch.tensor([u]), h_cf[:, [u]]))).softmax(1)[:, 1] - p
                            for u in range(4)], 1)
    got = carrier_unit_effects(model, x, AttributeFlip(0), "mid", target=1, max_batch_size=1)
    torch.testing.assert_close(got, hand, rtol=0, atol=1e-12)
