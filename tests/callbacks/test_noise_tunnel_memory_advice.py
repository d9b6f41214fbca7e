"""Out of memory in a NoiseTunnel of GradientShap (one pass of all its copies whatever max_batch_size): the advice names
nt_samples_batch_size, and following it runs."""

import pytest

from lightning_causal import audit_model
from lightning_causal._compat import OutOfMemoryError
from lightning_causal.audits import CaptumBaseline
from tests.callbacks.test_trial_newuser29_audit_faults import _X, _Limited

_TUNNEL = "NoiseTunnel(GradientShap)"


def test_the_advice_names_the_tunnels_batch_option_and_following_it_runs():
    with pytest.raises(OutOfMemoryError) as caught:
        audit_model(_Limited(700), CaptumBaseline(methods=[_TUNNEL]), _X)
    notes = " ".join(caught.value.__notes__)
    assert "it failed in a NoiseTunnel" in notes and "{'nt_samples_batch_size': 1}" in notes
    options = {_TUNNEL: {"nt_samples_batch_size": 1}}
    (result,) = audit_model(_Limited(700), CaptumBaseline(methods=[_TUNNEL], method_options=options), _X)
    assert result.maps["NoiseTunnel-GradientShap"].shape == _X.shape


def test_a_pass_outside_a_tunnel_says_nothing_of_it():
    with pytest.raises(OutOfMemoryError) as caught:
        audit_model(_Limited(100), CaptumBaseline(methods=["IntegratedGradients"]), _X)
    assert "NoiseTunnel" not in " ".join(caught.value.__notes__)


def test_gradient_shap_outside_a_tunnel_is_told_max_batch_size_and_following_it_runs():
    # Captum's GradientShap runs a NoiseTunnel of its own, but its passes are bounded by max_batch_size (e6a7520): the
    # advice is max_batch_size's, not the tunnel's option (which a plain GradientShap does not take)
    with pytest.raises(OutOfMemoryError) as caught:
        audit_model(_Limited(100), CaptumBaseline(methods=["GradientShap"]), _X)
    notes = " ".join(caught.value.__notes__)
    assert "so try `max_batch_size=" in notes and "NoiseTunnel" not in notes
    (result,) = audit_model(_Limited(100), CaptumBaseline(methods=["GradientShap"]), _X, max_batch_size=64)
    assert result.maps["GradientShap"].shape == _X.shape
