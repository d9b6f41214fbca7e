"""Captum's layer methods ran outside the stacked-rows check that 7cc1098a opened around Captum's methods of the inputs:
LayerConductance of a model that branches on a statistic of its batch after the layer gave the branch of each pass of
interpolated inputs, silently (``layer_attribute`` and ``CaptumBaseline(layers=...)``), and other numbers at another
``max_batch_size``. Its passes (and those of LayerGradientXActivation and LayerActivation) now run their end rows alone
too; ordinary models give the numbers they gave."""

import contextlib

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_methods
from lightning_causal.baselines.layer_methods import layer_attribute
from tests.test_captum_stacked_s32_captum import ordinary_models
from tests.test_leftovers_s31a_stacked_rows import PROBE


class LayerBranch(nn.Module):
    """``h = a(x) = x`` (an identity Linear), ``s = h0 + h1``, times 10 where the batch's mean of ``h0`` is above 0.5."""

    def __init__(self, per_row: bool = False) -> None:
        super().__init__()
        self.a, self.per_row = nn.Linear(2, 2), per_row
        with torch.no_grad():
            self.a.weight.copy_(torch.eye(2))
            self.a.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        s = h.sum(1, keepdim=True)
        if self.per_row:  # the refusal's fix: the row's own h0
            return torch.where(h[:, :1] > 0.5, s * 10, s)
        return s * 10 if h[:, 0].mean() > 0.5 else s


@contextlib.contextmanager
def unchecked():
    """The layer methods' passes as they ran before the check."""
    checked = getattr(layer_methods, "_stacked_rows_checked", None)
    layer_methods._stacked_rows_checked = lambda method, layer, model: contextlib.nullcontext()
    try:
        yield
    finally:
        if checked is None:
            del layer_methods._stacked_rows_checked
        else:
            layer_methods._stacked_rows_checked = checked


def test_layer_conductance_of_a_model_that_branches_on_its_batch_is_refused():
    # in a pass of 8 rows (two steps of the four samples, alpha * x) the mean of h0 is 1.5 alpha; sample 0's alone
    # 2 alpha: between the two the pass takes the plain branch where sample 0 alone takes the x10 one
    with unchecked():  # it ran: other numbers at another max_batch_size, the branch of each pass
        at4 = layer_attribute(LayerBranch(), PROBE, "a", "LayerConductance", target=0, max_batch_size=4)
        whole = layer_attribute(LayerBranch(), PROBE, "a", "LayerConductance", target=0)
    assert not torch.allclose(at4, whole, atol=0.1)
    for rows in (4, None):
        with pytest.raises(ValueError, match="interpolated inputs that Captum's LayerConductance on 'a' stacks in one "
                                             "pass to give what they give alone") as caught:
            layer_attribute(LayerBranch(), PROBE, "a", "LayerConductance", target=0, max_batch_size=rows)
        assert "unit_effects" in str(caught.value)
    fixed = [layer_attribute(LayerBranch(per_row=True), PROBE, "a", "LayerConductance", target=0, max_batch_size=rows)
             for rows in (4, None)]  # the per-row model: not refused, the same numbers in any pass
    torch.testing.assert_close(fixed[0], fixed[1])


#: a hidden layer of each of test_captum_stacked_s32_captum's ordinary float32 models
LAYERS = {"mlp": "1", "batchnorm": "2", "cnn": "1", "mc dropout": "a"}


def ordinary() -> list[tuple[str, torch.nn.Module, torch.Tensor, str]]:
    return [(name, model, x, LAYERS[name]) for name, model, x in ordinary_models() if name in LAYERS]


@pytest.mark.parametrize("name, model, x, layer", ordinary(), ids=[c[0] for c in ordinary()])
@pytest.mark.parametrize("method", ["LayerConductance", "LayerGradientXActivation", "LayerActivation"])
def test_ordinary_models_give_the_layer_attributions_they_gave(name, model, x, layer, method):
    model.eval()
    for rows in (5, None):
        torch.manual_seed(1)
        with unchecked():
            before = layer_attribute(model, x, layer, method, target=1, max_batch_size=rows)
        torch.manual_seed(1)
        assert torch.equal(before, layer_attribute(model, x, layer, method, target=1, max_batch_size=rows))
