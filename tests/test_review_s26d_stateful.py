"""Review of newuser42's stateful-model commits (git diff 1762ad3): what the refusal of a carried state says,
what the audits put back on a model's attributes, and a stateful model in the fused repair pass."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.kept_attributes import keep_attributes

T, F, H = 4, 3, 4


class ReadsItsState(nn.Module):
    """A GRU that starts from the state its previous call left wherever the batch size matches, also in eval."""

    def __init__(self):
        super().__init__()
        self.rnn, self.head, self.h = nn.GRU(F, H, batch_first=True), nn.Linear(H, 2), None

    def forward(self, x):
        h0 = self.h if self.h is not None and self.h.shape[1] == x.shape[0] else None
        out, h = self.rnn(x, h0)
        self.h = h.detach()
        return self.head(out[:, -1])


def test_the_refusal_of_a_carried_state_names_it_without_the_trial_pass_shape_and_gives_its_own_way_out():
    torch.manual_seed(0)
    m = ReadsItsState().eval()
    x = torch.randn(6, T, F)
    m(x)  # a state [1, 6, 4], read by the probe's pass of 6 rows
    with pytest.raises(ValueError) as err:
        unit_effects(m, x, "rnn", unit_dim=-1)
    message = str(err.value)
    assert "reads a state it keeps from earlier calls: h (" in message
    assert "[1, 2, 4]" not in message  # the state of the trial pass of two rows, not the one the probe read
    assert "start every sequence from a fresh state;" in message  # then the streaming way out (newuser121), and no other
    assert message.endswith("(docs/your_model.md#streaming-models-a-state-carried-across-calls)")
    assert "torch.where" not in message and "one sample at a time" not in message  # no help for a carried state


class EmptyAtFirst(nn.Module):
    """An LSTM whose state starts as an empty tuple (``self.state = ()``), and a list the forward appends its
    states to (``self.seen``), both carried across calls."""

    def __init__(self):
        super().__init__()
        self.rnn, self.head = nn.LSTM(F, H, batch_first=True), nn.Linear(H, 2)
        self.state, self.seen, self.calls = (), [], 0

    def forward(self, x):
        h0 = self.state if self.training and self.state and self.state[0].shape[1] == x.shape[0] else None
        out, (h, c) = self.rnn(x, h0)
        self.state = (h.detach(), c.detach())
        self.seen.append(h.detach())
        self.calls = torch.tensor(self.calls) + 1  # an int at first, a tensor once set
        return self.head(out[:, -1])


def test_a_state_that_was_empty_or_not_a_tensor_before_the_audit_is_put_back_not_removed():
    torch.manual_seed(0)
    m = EmptyAtFirst().eval()
    seen, x = m.seen, torch.randn(5, T, F)
    input_effects(m, x, torch.arange(T).reshape(1, T, 1).expand(1, T, F))
    assert m.state == () and m.calls == 0  # before: both attributes removed, the next call raised AttributeError
    assert m.seen is seen and m.seen == []  # before: the audit's passes' states appended to the list
    m.train()(x)
    assert len(m.state) == 2 and len(m.seen) == 1


def test_the_weights_a_forward_computes_are_put_back_without_copying_their_values():
    torch.manual_seed(0)
    with warnings.catch_warnings():  # torch.nn.utils.weight_norm is deprecated, still in use (audio vocoders)
        warnings.simplefilter("ignore")
        m = nn.Sequential(*[nn.utils.weight_norm(nn.Linear(8, 8)) for _ in range(3)])
    m(torch.randn(2, 8))  # the pre-hook sets each layer's `weight`, a plain attribute in the graph of g and v
    weights = [layer.weight for layer in m]
    kept = keep_attributes(m)
    assert kept.copies == []  # before: a copy of every layer's weight at each audit and at each term of each repair step
    m(torch.randn(2, 8))
    kept.restore()
    assert all(layer.weight is w for layer, w in zip(m, weights))


class DataAssigned(nn.Module):
    """A GRU whose forward writes its state through ``.data`` (``self.h.data = h``), as older TBPTT code does: the
    tensor object stays, its version does not move."""

    def __init__(self):
        super().__init__()
        self.rnn, self.head, self.h = nn.GRU(F, H, batch_first=True), nn.Linear(H, 2), torch.zeros(1, 8, H)

    def forward(self, x):
        h0 = self.h if self.training and self.h.shape[1] == x.shape[0] else None
        out, h = self.rnn(x, h0)
        self.h.data = h.detach()
        return self.head(out[:, -1])


def test_a_state_written_through_data_gets_its_values_back():
    torch.manual_seed(0)
    m = DataAssigned().eval()
    m(torch.randn(8, T, F))
    state, values = m.h, m.h.clone()
    input_effects(m, torch.randn(5, T, F), torch.arange(T).reshape(1, T, 1).expand(1, T, F))
    assert m.h is state and torch.equal(m.h, values)  # before: the audit's last pass's state, [1, 30, 4]
    sparse = nn.Linear(2, 2)
    sparse.h = torch.eye(3).to_sparse()
    kept, h = keep_attributes(sparse), sparse.h  # a layout without one storage (no data_ptr) is kept too
    sparse.h = torch.ones(3, 3)
    kept.restore()
    assert sparse.h is h
