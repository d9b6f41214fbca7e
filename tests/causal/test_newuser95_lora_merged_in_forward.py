"""A LoRA layer written for Lightning merges in its forward: Lightning puts the modes back by the flag (its
``_ModuleMode.restore`` sets ``module.training``, never calling ``train()``), so a layer merging ``B @ A`` in
``train(False)`` stays merged through the next training steps, with no gradient reaching A and B. A user who met that
merges by ``self.training`` in ``forward`` instead. An audit's eval-mode passes then merged the update into the
wrapped weight, ``audit_mode`` and ``no_trace`` put ``merged`` back to ``False`` with the attributes, and the weight
stayed merged: ``B @ A`` counted twice from then on (output off by 1.75 after one ``input_effects`` call), and the
next fit step trained from there. Such a layer's parameters are kept now (``init_writes._merge_flag``)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.state import audit_mode


class LazyLoRA(nn.Module):
    """Merges and unmerges in ``forward`` by ``self.training``; no ``train`` override."""

    def __init__(self, i: int, o: int, r: int = 2) -> None:
        super().__init__()
        self.base, self.merged = nn.Linear(i, o), False
        self.base.requires_grad_(False)
        self.lora_A, self.lora_B = nn.Parameter(torch.randn(r, i)), nn.Parameter(torch.randn(o, r))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        delta = (self.lora_B @ self.lora_A).detach()
        if self.training and self.merged:
            self.base.weight.data -= delta
            self.merged = False
        elif not self.training and not self.merged:
            self.base.weight.data += delta
            self.merged = True
        return self.base(x) if self.merged else self.base(x) + x @ self.lora_A.T @ self.lora_B.T


def _model(train: bool) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(LazyLoRA(4, 8), nn.ReLU(), nn.Linear(8, 3)).train(train)


def test_an_estimator_leaves_a_lora_merging_in_forward_as_found():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    for train in (True, False):  # in eval mode: a layer never run since is merged by the audit's first pass
        model = _model(train)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        input_effects(model, x, target=0)
        assert not model[0].merged and model.training is train
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), train
        with torch.no_grad():  # the function the user had: merged once, in eval mode or not at all
            expected = _model(train)(x)
            assert torch.equal(model(x), expected)


def test_audit_blocks_leave_a_lora_merging_in_forward_as_found():
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    for block in (audit_mode, no_trace):
        model = _model(True)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        with block(model), torch.no_grad():
            model(x)
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items()), block.__name__
        assert not model[0].merged and model.training


def test_a_merged_layer_in_eval_mode_is_not_copied():
    """No copy where no pass can merge: every module in eval mode and the update merged already."""
    from lightning_causal.causal.engine.init_writes import uninitialised_params

    model = _model(False)
    with torch.no_grad():
        model(torch.randn(2, 4))
    assert model[0].merged and uninitialised_params(model) == []
    assert len(uninitialised_params(model.train())) == 4  # base weight and bias, A and B
