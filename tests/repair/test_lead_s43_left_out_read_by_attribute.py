"""A frozen child left out of the backdoor term's reference and read by attribute (final read E, F1, F2).

9799ceb8's placeholder ran the network's own child only through its ``forward``: a reference reaching it by attribute
(``self.enc.d(self.enc.bn(self.enc.l(x)))``) ran the live child in the network's training mode (dropout on, batch
statistics) and updated its running statistics, so the reference's output and the global random state differed from
the whole copy's (max diff 4.52). And the placeholder took a pass over every weight at every call.
"""
import torch
from torch import nn

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm, backdoor_setup

TRIGGER = Trigger(torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 3.0, 0.0]), target=1)


class _Encoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l, self.bn, self.d = nn.Linear(4, 2), nn.BatchNorm1d(2), nn.Dropout(0.5)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.enc = nn.Linear(4, 2), _Encoder().requires_grad_(False)

    def forward(self, x):
        out = self.a(x)
        if x[:, 0].mean() < -1:  # the frozen encoder on some batches only, read through its parts
            out = out + self.enc.d(self.enc.bn(self.enc.l(x)))
        return out


def _rows():
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    return x.abs(), -x.abs() - 2.0, torch.arange(32) % 2


def test_a_child_read_by_attribute_is_read_as_the_whole_copy_holds_it():
    clean, branch, _ = _rows()
    model = _Net().train()
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, clean)
    assert type(term.reference.enc).__name__ == "_LeftOut"
    whole = BackdoorSuppressionTerm(TRIGGER, augment=None)
    whole.setup(model)
    stats = model.enc.bn.running_mean.clone()
    torch.manual_seed(5)
    got = term.reference(branch)
    state = torch.random.get_rng_state()
    torch.manual_seed(5)
    expected = whole.reference(branch)
    assert torch.equal(got, expected)
    assert torch.equal(state, torch.random.get_rng_state())
    assert torch.equal(model.enc.bn.running_mean, stats)


def test_the_loss_equals_the_whole_copy_s_after_the_network_moved_the_child_s_statistics():
    clean, branch, y = _rows()
    losses = []
    for inputs in (clean, None):
        model = _Net().train()
        term = BackdoorSuppressionTerm(TRIGGER, augment=None)
        term.setup(model, inputs) if inputs is not None else term.setup(model)
        torch.manual_seed(2)
        losses.append(term.loss(model, branch, y).detach())
    assert torch.equal(losses[0], losses[1])


def test_the_weights_are_fingerprinted_once_at_the_first_reach(monkeypatch):
    clean, branch, _ = _rows()
    model = _Net().train()
    term = BackdoorSuppressionTerm(TRIGGER, augment=None)
    term.setup(model, clean)
    calls = []
    real = backdoor_setup._fingerprint
    monkeypatch.setattr(backdoor_setup, "_fingerprint", lambda m: calls.append(1) or real(m))
    placeholder = term.reference.enc
    for _ in range(3):  # reads by attribute, as the network's forward does: the first copies the child
        placeholder.d(placeholder.bn(placeholder.l(branch)))
    assert len(calls) == 1
    with torch.no_grad():
        model.enc.l.weight.mul_(1.0)  # a write in place after the first reach: the copy is held, no check again
    placeholder.l(branch)
    assert len(calls) == 1
