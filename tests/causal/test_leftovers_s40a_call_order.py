"""One recorder of a pass's layer calls (``layer_calls``) serves the readings of what produced a model's output:
``label_task`` read the model's task from the last layer it REGISTERS (an auxiliary ``nn.Sigmoid`` registered last made
a model ending in a Linear multi-label; a model registering its final ``nn.Sigmoid`` first said nothing), and
``ends_in_sigmoid`` read the layer a pass called LAST, so a ``torch.sigmoid`` output followed by an auxiliary head's
call read as no probability. Both now read the layer that computed the output, by call order."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.audits.label_task import label_task, multi_hot_labels
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from lightning_causal.causal.engine.layer_calls import layer_calls, output_layer


class _Tagger(nn.Module):
    """``order="aux_last"``: ends in its Linear head, an auxiliary gate's nn.Sigmoid registered last (called first);
    ``order="sigmoid_first"``: its final nn.Sigmoid registered before every layer, called last."""

    def __init__(self, order: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.order = order
        if order == "sigmoid_first":
            self.act = nn.Sigmoid()
        self.body, self.head = nn.Linear(4, 8), nn.Linear(8, 3)
        if order == "aux_last":
            self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x))
        if self.order == "aux_last":
            return self.head(h * self.gate(h))
        return self.act(self.head(h))


@pytest.mark.parametrize(("order", "task"), [("aux_last", None), ("sigmoid_first", "multilabel")])
def test_the_task_is_read_from_the_layer_that_computed_the_output(order, task):
    model = _Tagger(order)
    with layer_calls():
        model(torch.randn(5, 4))
    assert output_layer(model) == (("Linear",) if order == "aux_last" else ("Sigmoid",))
    assert label_task(model) == task
    one_hot = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1])]  # one label a row: read by the task where the model says one
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert multi_hot_labels(one_hot, model) is (task == "multilabel")


def test_a_layers_output_viewed_whole_is_its_output_and_a_function_of_it_the_last_layer_called():
    class Binary(nn.Module):
        def __init__(self, end):
            super().__init__()
            self.end, self.net = end, nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())

        def forward(self, x):
            return self.end(self.net(x))

    model = Binary(lambda p: p.squeeze(1))
    with layer_calls():
        model(torch.randn(3, 4))
    assert output_layer(model) == ("Sigmoid",) and label_task(model) == "multilabel"
    # the log-odds of its sigmoid leave [0, 1]: by their values a gated head's logits (a head times a sigmoid gate
    # called after it), so no layer is named and the model is read as saying nothing of its task (warned where it
    # matters) rather than silently multi-label (final read of d32b049f)
    model = Binary(lambda p: p.log() - (1 - p).log())
    with layer_calls():
        model(torch.randn(3, 4))
    assert output_layer(model) == (None,) and label_task(model) is None
    with layer_calls():
        model = Binary(lambda p: p)
        model.forward = lambda x: torch.sigmoid(x.sum(1, keepdim=True))  # no layer called: none computed it
        model(torch.randn(3, 4))
    assert output_layer(model) == (None,) and label_task(model) is None


def test_a_direct_run_is_judged_on_a_watched_pass():
    model = _Tagger("aux_last")
    assert output_layer(model) is None  # never watched: registration order, the gate registered last
    assert label_task(model) == "multilabel"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        InputEffectAudit().run(model, Probe(torch.randn(6, 4)))  # the judge's pass after the run watches
    assert label_task(model) is None


class _AuxAfter(nn.Module):
    """A probability ``torch.sigmoid(head(h))`` (every one above 0.5) with an auxiliary head called after it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head, self.aux = nn.Linear(4, 8), nn.Linear(8, 1), nn.Linear(8, 2)
        with torch.no_grad():
            self.head.weight.mul_(0.02)
            self.head.bias.fill_(3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.body(x))
        p = torch.sigmoid(self.head(h))
        self.last_aux = self.aux(h)  # an auxiliary head read elsewhere, called after the output
        return p


def test_a_sigmoid_output_followed_by_an_auxiliary_head_is_told():
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    x[:, 3] = (torch.arange(64) % 2).float()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        counterfactual_fairness_gap(_AuxAfter(), x, AttributeFlip(3), sensitive=3)
    said = [str(w.message) for w in seen if "read as a logit by" in str(w.message)]
    assert said and "above 0.5" in said[0]


def test_the_recorder_nests_and_leaves_no_hook_even_on_errors():
    model = _Tagger("aux_last")
    with layer_calls() as outer:
        with layer_calls() as inner:  # shares the outer one's
            out = model(torch.zeros(2, 4))
        assert inner is outer and outer.producer(out).module is model.head
        assert [c.module for c in outer.calls] == [model.body, model.gate, model.head]
        assert all(c.source is None for c in outer.calls)  # a torch.relu between: no layer returned their inputs
        net = nn.Sequential(nn.Linear(4, 3), nn.Tanh())
        net(torch.zeros(2, 4))  # a new pass: the last one's calls go
        assert [c.module for c in outer.calls] == list(net) and outer.calls[1].source is outer.calls[0]
        with pytest.raises(RuntimeError), layer_calls():
            raise RuntimeError("mid-way")
    hooks = torch.nn.modules.module
    assert not hooks._global_forward_hooks and not hooks._global_forward_pre_hooks
