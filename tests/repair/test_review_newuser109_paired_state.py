"""CounterfactualFairnessTerm's paired passes (8d86e9ad) leave the model's buffers as one pass does and read the
model's return value of the pass its outputs come from (review of newuser109)."""

import warnings

import torch
from torch import nn
from torch.distributions import Normal

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm


def _rows() -> torch.Tensor:
    x = torch.randn(24, 5, generator=torch.Generator().manual_seed(1))
    x[:, 1] = (x[:, 1] > 0).float()
    return x


def _spectral_net() -> nn.Sequential:
    """Spectral norm (its power iteration writes u, v at each training pass) behind dropout; column 1 never read."""
    torch.manual_seed(0)
    lin = nn.Linear(5, 8)
    with torch.no_grad():
        lin.weight[:, 1] = 0.0
    return nn.Sequential(nn.utils.spectral_norm(lin), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 2)).train()


def test_spectral_norm_behind_dropout_costs_nothing_and_advances_once_a_step():
    net, ref = _spectral_net(), _spectral_net()
    term = CounterfactualFairnessTerm(AttributeFlip(1), distance="logit")
    torch.manual_seed(3)
    values = [float(term.loss(net, _rows(), None)) for _ in range(3)]
    assert values == [0.0, 0.0, 0.0]  # 0.0121, 6.5e-4, 2.8e-5: x_cf read a weight iterations further than x
    for _ in range(3):
        ref(_rows())  # one pass a step: u and v advanced once each
    held = dict(ref.named_buffers())
    assert all(torch.equal(v, held[k]) for k, v in net.named_buffers())


def test_dropout_set_to_zero_runs_one_pass_again_at_once():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Dropout(0.3), nn.Linear(8, 2)).train()
    term = CounterfactualFairnessTerm(AttributeFlip(1), distance="logit")
    torch.manual_seed(3)
    term.loss(net, _rows(), None)  # drew: two passes
    net[2].p = 0.0
    calls = []
    net[0].register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    state = {k: v.clone() for k, v in net.state_dict().items()}
    got = term.loss(net, _rows(), None)
    fresh = CounterfactualFairnessTerm(AttributeFlip(1), distance="logit")
    net.load_state_dict(state)
    assert torch.equal(got, fresh.loss(net, _rows(), None))  # what a new term computes: one pass of both halves
    assert calls[-1] == 48


class _Gauss(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.drop = nn.Linear(5, 2), nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> Normal:
        return Normal(self.drop(self.lin(x)), 1.0)


def test_a_normal_heads_mean_is_named_behind_dropout_too():
    term = CounterfactualFairnessTerm(AttributeFlip(1), output=lambda d: d.mean)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        term.loss(_Gauss().train(), _rows(), None)
    assert term.__dict__.get("_continuous") == "the Normal's mean"  # None where the outputs' rows outnumbered raw's
    assert any("the Normal's mean" in str(w.message) for w in seen)


class _Checkpointed(nn.Module):
    """A training-mode BatchNorm and dropout inside a torch.utils.checkpoint segment; column 1 never read."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3))
        self.b = nn.Linear(8, 2)
        with torch.no_grad():
            self.a[0].weight[:, 1] = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from torch.utils.checkpoint import checkpoint

        return self.b(checkpoint(self.a, x, use_reentrant=False))


def test_a_checkpointed_batch_norm_behind_dropout_is_warned_of_once():
    net, term = _Checkpointed().train(), CounterfactualFairnessTerm(AttributeFlip(1), distance="logit")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        torch.manual_seed(3)
        values = [term.loss(net, _rows(), None) for _ in range(2)]
    said = [w for w in seen if "activation-checkpointed segment" in str(w.message)]
    assert len(said) == 1 and "a column the model never reads has a term above 0" in str(said[0].message)
    assert all(float(v) > 0 for v in values)  # one pass of both halves: the noise the warning names (0.397 at first)
    values[0].backward()  # a gradient through the checkpointed segment, no CheckpointError
