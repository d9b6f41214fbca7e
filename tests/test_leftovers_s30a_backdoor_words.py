"""leftovers_s30a: two words of the backdoor search on a class that every input is already predicted as.

``reverse_trigger`` called for such a class returned a trigger shrunk under the mask penalty alone (no input to move)
and said nothing, where ``neural_cleanse`` (5e154c5f) never flags that class and warns; it now warns with a
``ProbeContentsWarning`` too, by the same check (``trigger_search._unattacked``). BackdoorAudit's anomaly-index chart of a
2-class model whose inputs are all in one class has every value NaN (nothing drawn) under a y-label that still read
"(σ = 1.4826·MAD; > 0: below the median)"; it says "NaN at every class: none drawn" now.
"""

import warnings

import pytest

from lightning_causal import BackdoorAudit
from lightning_causal.audits import Probe
from lightning_causal.causal.backdoor.reverse import reverse_trigger
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.causal.test_leftovers_s29d_unattacked_class import _one_class_model


def test_reverse_trigger_warns_of_a_class_every_input_is_already_in():
    model, x = _one_class_model([50.0, 0.0, -50.0])  # class 0 on every input
    with pytest.warns(ProbeContentsWarning, match=r"^reverse_trigger: every one of the 32 inputs is already predicted as "
                      r"class 0: its reversed trigger has no input to move") as said:
        reverse_trigger(model, x, 0, steps=5, channel_dim=None)
    assert said[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error", ProbeContentsWarning)
        reverse_trigger(model, x, 1, steps=5, channel_dim=None)  # another class: inputs to move, nothing said
        spread, y = _one_class_model([0.0, 0.0, 0.0])  # inputs in several classes
        reverse_trigger(spread, y, 0, steps=5, channel_dim=None)


def _probed(bias: list[float]) -> tuple:
    model, x = _one_class_model(bias)
    return model, Probe(x)


def _ylabels(result) -> dict[str, str]:
    return {tag.rsplit("/", 1)[-1]: fig.axes[0].get_ylabel() for tag, fig in TensorBoardRenderer().figures([result]).items()}


def test_an_anomaly_index_chart_of_no_value_promises_no_scale():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        two = BackdoorAudit(steps=5).run(*_probed([0.0, 50.0]))  # both indices NaN
        three = BackdoorAudit(steps=5).run(*_probed([50.0, 0.0, -50.0]))  # class 0's NaN, the others drawn
    assert _ylabels(two)["anomaly_index"] == "anomaly index of the mask's L1 norm\n(NaN at every class: none drawn)"
    assert _ylabels(three)["anomaly_index"] == "anomaly index of the mask's L1 norm\n(σ = 1.4826·MAD; > 0: below the median)"
