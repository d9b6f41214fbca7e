"""The input-layer methods given ``perturbations_per_eval`` or ``baselines`` options (newuser28, a Captum
maintainer's check).

Captum's layer ablation takes one target for every sample with ``perturbations_per_eval > 1`` only; the wrapper
hands Captum the resolved targets as a tensor ``[N]``, so any value above 1, even with ``target=1``, failed on
Captum's ``AssertionError: Tensor target dimension torch.Size([N]) is not valid``. One target is now passed as
an int (the batched passes give the numbers of one group per pass), and per-sample targets that differ are
refused naming the option, why, and what to give.

A ``baselines`` option (Captum's name, overriding the ``baseline`` argument) reached Captum unchecked: ``3.5`` ran
as token 3, ``11`` (beyond the vocabulary) and ``torch.tensor(3)`` failed on ``IndexError``, and
``LayerFeatureAblation`` dropped it silently. It is checked as the argument is and used by every method.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.baselines import input_layer_attribute
from lightning_causal.causal.effects.input_effects import input_effects


def _model_and_ids() -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()
    return model, torch.tensor([[1, 4, 7], [2, 2, 9], [5, 3, 8], [6, 1, 1]])


@pytest.mark.parametrize("target", [2, torch.tensor([2, 2, 2, 2])])
def test_batched_layer_ablation_of_one_target_equals_token_replacement(target) -> None:
    model, ids = _model_and_ids()
    ours = input_layer_attribute(model, ids, "0", ("LayerFeatureAblation", {"perturbations_per_eval": 3}), target=target, baseline=0)
    brute = input_effects(model, ids, None, 0, target=2)  # f_t(x) - f_t(x with token g replaced by 0), per position
    torch.testing.assert_close(ours, brute, rtol=1e-12, atol=1e-12)
    assert ours.abs().min() > 0


def test_batched_layer_ablation_of_per_sample_targets_is_refused_saying_what_to_give() -> None:
    model, ids = _model_and_ids()
    with pytest.raises(ValueError, match=r"Expected option `perturbations_per_eval` of method `LayerFeatureAblation` to be None or 1 "
                                         r"with per-sample targets but got 2: .* leave it unset \(one group per pass\) or give one target"):
        input_layer_attribute(model, ids, "0", ("LayerFeatureAblation", {"perturbations_per_eval": 2}), target=torch.tensor([0, 1, 2, 0]),
                              baseline=0)


def test_a_baselines_option_of_an_input_layer_method_is_the_baseline_token_checked_as_the_argument() -> None:
    # it reached Captum unchecked: 3.5 ran as token 3, 11 (beyond the vocabulary) and tensor(3) failed on IndexError,
    # and LayerFeatureAblation dropped it (the argument's baseline 0 ran instead)
    from captum.attr import LayerIntegratedGradients

    model, ids = _model_and_ids()
    ref = LayerIntegratedGradients(model, model[0]).attribute(ids, baselines=torch.full_like(ids, 3), target=1, n_steps=16,
                                                              method="gausslegendre").sum(-1)
    for given in (3, 3.0, torch.tensor(3)):
        ours = input_layer_attribute(model, ids, "0", ("LayerIntegratedGradients", {"baselines": given}), target=1)
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)
    ablated = input_layer_attribute(model, ids, "0", ("LayerFeatureAblation", {"baselines": 3}), target=1)
    torch.testing.assert_close(ablated, input_effects(model, ids, None, 3, target=1), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match=r"Expected option `baselines` of method `LayerIntegratedGradients` to be an integer \(a token id\)"):
        input_layer_attribute(model, ids, "0", ("LayerIntegratedGradients", {"baselines": 3.5}), target=1)
    with pytest.raises(ValueError, match=r"Expected option `baselines` of method `LayerFeatureAblation` to be a token id in \[0, 10\)"):
        input_layer_attribute(model, ids, "0", ("LayerFeatureAblation", {"baselines": 11}), target=1)


def test_a_method_of_the_inputs_is_refused_listing_the_input_layer_methods() -> None:
    model, ids = _model_and_ids()  # it said "(LayerIntegratedGradients, ...)", not the three it takes
    with pytest.raises(ValueError, match=r"Expected argument `method` to be one of \['LayerIntegratedGradients', "
                                         r"'LayerGradientXActivation', 'LayerFeatureAblation'\] .* but got 'NoiseTunnel-Saliency'"):
        input_layer_attribute(model, ids, "0", "NoiseTunnel(Saliency)", target=1)
