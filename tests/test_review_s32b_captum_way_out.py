"""The stacked-rows refusal of Captum's methods (7cc1098a) offered every method the same way out, one sample per call
with ``max_batch_size=1``, where two of them still stack rows: DeepLift runs each sample beside its baseline in one pass
whatever ``max_batch_size``, and a NoiseTunnel over GradientShap runs its noisy copies and sampled points in one pass
unless its options say otherwise; a user who followed the advice met the same refusal again. Each refusal now names a
way out that runs, and following it gives the rows alone (the per-row model's attributions)."""

import pytest
import torch

from lightning_causal.baselines.captum_methods import attribute
from tests.test_captum_stacked_s32_captum import RowBranch
from tests.test_leftovers_s31a_stacked_rows import PROBE, BatchBranch


def per_sample(model, method, **kw):
    return torch.cat([attribute(model, PROBE[i:i + 1], method, target=0, max_batch_size=1, generator=0, **kw)
                      for i in range(len(PROBE))])


def test_deeplift_is_not_told_to_pass_one_row_and_its_way_out_runs():
    # sample 1 alone (x0 = 1, above 0.5) takes the x10 branch; beside its zero baseline the pass's mean of x0 is 0.5
    with pytest.raises(ValueError, match="DeepLift stacks in one pass") as caught:
        per_sample(BatchBranch(), "DeepLift")
    message = str(caught.value)
    assert "DeepLift runs each sample beside its baseline in one pass whatever `max_batch_size`" in message
    assert "with `max_batch_size=1`, passes of one row" not in message
    ran = per_sample(BatchBranch(), "IntegratedGradients")  # the way out it names
    torch.testing.assert_close(ran, attribute(RowBranch(), PROBE, "IntegratedGradients", target=0), atol=1e-5, rtol=0)


def test_a_noise_tunnel_over_gradient_shap_is_told_the_options_that_make_its_passes_one_row():
    with pytest.raises(ValueError, match="noisy copies that Captum's NoiseTunnel") as caught:
        per_sample(BatchBranch(), "NoiseTunnel(GradientShap)")
    assert "with `max_batch_size=1` (CaptumBaseline: a Probe of one sample) and options " \
           "`nt_samples_batch_size=1, n_samples=1`" in str(caught.value)
    options = {"nt_samples_batch_size": 1, "n_samples": 1}
    ran = per_sample(BatchBranch(), "NoiseTunnel(GradientShap)", options=options)  # not refused: passes of one row
    torch.testing.assert_close(ran, per_sample(RowBranch(), "NoiseTunnel(GradientShap)", options=options))
