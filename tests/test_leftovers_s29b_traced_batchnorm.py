"""Leftovers of session 28: a model traced by ``torch.jit.trace`` while in training mode keeps its BatchNorm in training
mode inside the graph (``batch_norm(..., training=True)``, ``num_batches_tracked.add_``), whatever ``eval()`` says
afterwards. The estimators refused it as reading "a state it keeps from earlier calls: 1.num_batches_tracked (a
recurrent state carried across batches, `self.h = h.detach()`)", a cause and a way out that do not fit; a probe of one
sample was not refused at all (the traced graph skips torch's "more than 1 value per channel" check) and every effect
came out 0. The refusal now names the BatchNorm traced in training mode and the way out: trace in eval mode."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


def _traced(mode_train: bool) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.randn(16, 4)
    with torch.no_grad():
        net.train()(x)  # running statistics of their own
    net.train(mode_train)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, x)
    return net.eval(), traced.eval(), x


@pytest.mark.parametrize("rows", [16, 1])
def test_a_model_traced_in_training_mode_is_refused_naming_its_batchnorm_and_the_way_out(rows):
    _, traced, x = _traced(True)
    with pytest.raises(ValueError, match=r"BatchNorm layer\(s\) \['1'\] were traced \(torch.jit.trace\) in training mode"
                                         r".*trace the model in eval mode \(`model.eval\(\); torch.jit.trace\(model, x\)`\)") as info:
        input_effects(traced, x[:rows], target=0)
    assert "carried across batches" not in str(info.value)  # before: the recurrent-state cause (rows=16); rows=1: no error


def test_the_way_out_a_model_traced_in_eval_mode_gives_the_eager_models_effects():
    from lightning_causal.causal.engine.kept_attributes import traced_training_norms

    net, traced, x = _traced(False)
    assert traced_training_norms(traced) == [] and traced_training_norms(_traced(True)[1]) == ["1"]
    assert traced_training_norms(net) == [] and traced_training_norms(torch.jit.script(net)) == []
    torch.testing.assert_close(input_effects(traced, x, target=0), input_effects(net, x, target=0))
