"""Review of d7e527a9: an audit's passes run without gradients, and ``ends_in_sigmoid`` read there the last layer the
model REGISTERS, not the one its forward calls last. A probability model registering its ``nn.Sigmoid`` before its head
was read as logits in silence (every sample decided positive), and a logit model with a gate's ``nn.Sigmoid``
registered after its head (an SE block, a GLU-like gate) whose logits all lie in (0.5, 1) was told to take the logit of
its logits. The audits now read the layers each pass calls (``layer_calls``, session 40), which also sees a
``torch.sigmoid`` in ``forward``; a compiled model's training step (one opaque autograd node) falls back on the
registered layers instead of reading as no sigmoid."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from lightning_causal.causal.engine.layer_calls import layer_calls, open_recorder
from lightning_causal.causal.engine.state import ends_in_sigmoid

WORDS = "read as a logit by"


def _data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (torch.arange(n) % 2).float()
    return x, (torch.arange(n) % 3 == 0).long()


class _Gated(nn.Module):
    """A gated body and a one-output head. ``end``: "first" registers the final nn.Sigmoid before every layer and the head last,
    "logit" returns the head's logit (bias 0.75: every logit in (0.5, 1)) with the gate's nn.Sigmoid registered last,
    "function" ends in torch.sigmoid (the head registered last)."""

    def __init__(self, end: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.end = end
        if end == "first":
            self.act = nn.Sigmoid()
        if end == "logit":  # the gate registered after the head
            self.body, self.head, self.gate_lin, self.gate = nn.Linear(4, 8), nn.Linear(8, 1), nn.Linear(8, 8), nn.Sigmoid()
        else:  # the head registered last
            self.gate_lin, self.gate, self.body, self.head = nn.Linear(8, 8), nn.Sigmoid(), nn.Linear(4, 8), nn.Linear(8, 1)
        with torch.no_grad():
            self.head.weight.mul_(0.02)
            self.head.bias.fill_(0.75 if end == "logit" else 3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x))
        z = self.head(h * self.gate(self.gate_lin(h)))
        return self.act(z) if self.end == "first" else torch.sigmoid(z) if self.end == "function" else z


def _said(run) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in seen if WORDS in str(w.message)]


@pytest.mark.parametrize("end", ["first", "function"])
def test_a_probability_is_told_whatever_order_the_sigmoid_is_registered_in(end):
    x, y = _data()
    model = _Gated(end)
    with torch.no_grad():
        out = model(x)
    assert bool((out > 0.5).all()) and bool((out < 1).all())
    (said,) = _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3).run(model, Probe(x, y)))
    assert "above 0.5" in said and "out.float().logit(eps=1e-6)" in said
    assert _said(lambda: counterfactual_fairness_gap(model, x, AttributeFlip(3), sensitive=3))


def test_a_logit_model_with_a_gate_registered_last_is_read_as_it_is():
    x, y = _data()
    model = _Gated("logit")
    with torch.no_grad():
        out = model(x)
    assert bool((out > 0.5).all()) and bool((out < 1).all())  # logits of one sign in (0, 1): a bias above 0
    assert not _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3, layers=["body"]).run(model, Probe(x, y)))
    assert not _said(lambda: counterfactual_fairness_gap(model, x, AttributeFlip(3), sensitive=3))


def test_the_watch_leaves_no_hook_and_nests():
    model = _Gated("logit")
    with layer_calls():
        with layer_calls():  # shares the outer one's
            model(torch.zeros(2, 4))
        last = open_recorder().calls[-1]
        assert last.module is model.head and last.held.shape == (2, 1)
        wide = nn.Linear(4, 3)
        wide(torch.zeros(2, 4))  # [N, 3]: the layer told, its output not held on to (an LM head's [N, T, V])
        last = open_recorder().calls[-1]
        assert last.module is wide and last.held is None
        with pytest.raises(RuntimeError), layer_calls():
            raise RuntimeError("mid-way")
    assert open_recorder() is None and not torch.nn.modules.module._global_forward_hooks


def test_a_compiled_graph_falls_back_on_the_registered_layers():
    model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    out = torch.compile(model, backend="aot_eager")(torch.randn(8, 4))
    assert type(out.grad_fn).__name__.startswith("CompiledFunction")
    assert ends_in_sigmoid(out, model)
