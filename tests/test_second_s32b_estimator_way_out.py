"""Second look at b1d3a18e and 8895ad65: the stacked-rows refusals of Captum's methods (``attribute``) and of the layer
methods (``layer_attribute``) name the causal estimators as a way out, ``input_effects`` and ``unit_effects`` on the
layer, but those check their own stacked rows and refuse the same model in their default passes: a user who followed
the advice met a second refusal. The advice now says how they run it (``max_batch_size=1``), and so they give the
per-row model's effects."""

import pytest
import torch

from lightning_causal.baselines.captum_methods import attribute
from lightning_causal.baselines.layer_methods import layer_attribute
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.effects.unit_effects import unit_effects
from tests.test_captum_stacked_s32_captum import RowBranch
from tests.test_leftovers_s31a_stacked_rows import PROBE, BatchBranch
from tests.test_review_s32b_layer_stacked_rows import LayerBranch


@pytest.mark.parametrize("method", ["IntegratedGradients", "DeepLift", "FeatureAblation"])
def test_the_input_methods_refusal_names_input_effects_in_passes_of_one_row_and_that_runs(method: str) -> None:
    with pytest.raises(ValueError, match="stacks in one pass") as caught:
        if method == "DeepLift":  # refused one sample at a time too: sample 1 (x0 = 1) beside its zero baseline, mean 0.5
            attribute(BatchBranch(), PROBE[1:2], method, target=0, max_batch_size=1)
        else:
            attribute(BatchBranch(), PROBE, method, target=0)
    assert "causal estimators in passes of one row (input_effects with `max_batch_size=1`)" in str(caught.value)
    with pytest.raises(ValueError, match="input_effects stacks in one pass"):  # as the estimator runs by default
        input_effects(BatchBranch(), PROBE, target=0)
    torch.testing.assert_close(input_effects(BatchBranch(), PROBE, target=0, max_batch_size=1),
                               input_effects(RowBranch(), PROBE, target=0))


@pytest.mark.parametrize("method", ["LayerConductance", "LayerGradientXActivation"])
def test_the_layer_methods_refusal_names_unit_effects_in_passes_of_one_row_and_that_runs(method: str) -> None:
    # LayerGradientXActivation's pass of the probe's 4 rows: mean h0 1.5, the x10 branch, where sample 1 alone (h0 = 1)
    # takes it too; so h0 = 0.4, 0.8, 0.4, 0.8 (mean 0.6, the x10 branch): the probe check's pairs, rows 0-1 and 2-3,
    # take it as the pass does (a probe of 2 is refused there since session 41: sample 0 run twice), row 0 alone not
    x = torch.tensor([[0.4, 1.0], [0.8, 1.0]]).repeat(2, 1) if method == "LayerGradientXActivation" else PROBE
    with pytest.raises(ValueError, match="stacks in one pass") as caught:
        layer_attribute(LayerBranch(), x, "a", method, target=0)
    assert "unit_effects on " in str(caught.value) and "with `max_batch_size=1`" in str(caught.value)
    with pytest.raises(ValueError, match="unit_effects on 'a' stacks in one pass"):
        unit_effects(LayerBranch(), PROBE, "a", target=0)
    torch.testing.assert_close(unit_effects(LayerBranch(), PROBE, "a", target=0, max_batch_size=1),
                               unit_effects(LayerBranch(per_row=True), PROBE, "a", target=0))
