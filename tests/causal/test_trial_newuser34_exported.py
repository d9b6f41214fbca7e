"""Models from torch.export (ExportedProgram.module(), an fx GraphModule): every estimator failed at once with
torch's "Calling eval() is not supported yet" (audit_mode and the callback's no_trace called model.eval(), which
such a module refuses). Input-level effects now run and equal the eager model's; a hidden layer, which the
exported graph never calls (it runs aten operations on the layer's weights), is refused naming the GraphModule
(it was "did not run on the first probe sample", a generic cause list); a model exported for one batch size
gets the way out (dynamic_shapes) in its guard's error. A symbolic_trace'd GraphModule, whose graph calls its
leaf modules, keeps its hidden layers."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import (
    InputEffectAudit,
    audit_model,
    input_effects,
    layer_causal_map,
    unit_effects,
)
from lightning_causal.baselines.captum_methods import attribute

X = torch.randn(7, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _eager() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 3)).double().eval()


@pytest.fixture(scope="module")
def exported():
    eager = _eager()
    batch = torch.export.Dim("batch")
    return eager, torch.export.export(eager, (X[:2],), dynamic_shapes=({0: batch},)).module()


def test_input_effects_of_an_exported_model_equal_the_eager_model(exported):
    eager, ep = exported
    got = input_effects(ep, X, target=1)
    torch.testing.assert_close(got, input_effects(eager, X, target=1), rtol=0, atol=1e-12)
    z = X.clone()
    z[:, 2] = 0  # by hand: do(x_2 := 0)
    with torch.no_grad():
        torch.testing.assert_close(got[:, 2], eager(X)[:, 1] - eager(z)[:, 1], rtol=0, atol=1e-12)


def test_audit_model_runs_on_an_exported_model(exported):
    eager, ep = exported
    (result,) = audit_model(ep, InputEffectAudit(target=0), (X, torch.zeros(7, dtype=torch.long)))
    torch.testing.assert_close(result.maps["effect"].reshape(7, 4), input_effects(eager, X, target=0), rtol=0, atol=1e-12)


def test_a_hidden_layer_of_an_exported_model_is_refused_naming_why(exported):
    _, ep = exported
    with pytest.raises(ValueError, match=r"layer '0' .* the model is a torch.fx GraphModule .* whose graph never calls it"):
        unit_effects(ep, X, "0", target=0)


def test_a_model_exported_for_one_batch_size_names_the_way_out():
    ep = torch.export.export(_eager(), (X[:2],)).module()
    # torch 2.13: AssertionError "Guard failed: ..."; torch 2.3: RuntimeError "Expected input at *args[0].shape[0] ..."
    with pytest.raises((AssertionError, RuntimeError),
                       match=r"(Guard failed|Expected input at).*dynamic_shapes=\(\{0: torch.export.Dim\('batch'\)\},\)"):
        input_effects(ep, X, target=0)


def test_a_symbolic_trace_keeps_its_hidden_layers():
    eager = _eager()
    traced = torch.fx.symbolic_trace(eager)
    torch.testing.assert_close(unit_effects(traced, X, "1", target=0), unit_effects(eager, X, "1", target=0), rtol=0, atol=1e-12)


def test_deeplift_on_an_exported_model_says_it_is_gradient_times_input(exported):
    """DeepLift's rescale rule hooks nonlinearity modules, which an exported graph runs as aten operations: its map
    was, silently, the gradient times (input - baseline), not the eager model's DeepLift."""
    eager, ep = exported
    with pytest.warns(UserWarning, match=r"DeepLift applies its rescale rule to nonlinearity modules only .*aten\.relu"):
        got = attribute(ep, X, "DeepLift", target=0)
    torch.testing.assert_close(got, attribute(eager, X, "InputXGradient", target=0), rtol=0, atol=1e-12)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        attribute(eager, X, "DeepLift", target=0)
    assert not [w for w in seen if "rescale rule" in str(w.message)]  # nn.ReLU modules: DeepLift's own rule runs


class _Head(nn.Module):
    """An eager head after an exported backbone (the user's module around a shipped one)."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.body, self.head = body, nn.Linear(3, 2).double()

    def forward(self, x):
        return self.head(torch.tanh(self.body(x)))


def test_the_default_layers_leave_out_an_exported_backbone(exported):
    """They picked the backbone's weight holders ('body.0'), which the estimators then refused: the map failed."""
    eager, ep = exported
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert layer_causal_map(_Head(ep), X).layers == ["head"]
        assert layer_causal_map(_Head(eager), X).layers == ["body.0", "body.3", "head"]
    with pytest.raises(ValueError, match=r"torch.fx GraphModule .* whose graph never calls it"):
        layer_causal_map(ep, X)  # the exported model itself: its layers refused, naming why
