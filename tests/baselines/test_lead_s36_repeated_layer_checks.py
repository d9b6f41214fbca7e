"""The checks that let Captum's LayerIntegratedGradients run on a layer called several times (the lead, session 36,
from a final read of 8f080e35/431a14ad/1096dcb6).

Two silent wrong answers: ``_last_call_decides`` compared the model at one point off Captum's path only (the last call's
output plus one), so a skip path that a threshold closes there and at the real value, but not along the path, passed
and the attributions summed to another model's change; and ``repeated_calls`` judged "every call returns the same
value" on the probe's first row only, so a palindrome on row 0 let an embedding read forwards and reversed through with
the other rows' attributions wrong. Both are refused now; the ordinary cases (a chain's shared activation, the same ids
embedded twice) still run and add up.
"""


import warnings

import pytest
import torch
from torch import nn

from lightning_causal.baselines import input_layer_attribute, layer_attribute


class _GatedChain(nn.Module):
    """A tanh chain with one shared activation whose first call also reaches the output through ``relu(-h1 - 0.5)``,
    closed on the real pass (``h1`` near +1) and at ``h1 + 1``, open where Captum's path takes ``h1`` below -0.5."""

    def __init__(self, shared: bool = True) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.out = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2)
        self.act = nn.Tanh()
        self.act2 = self.act if shared else nn.Tanh()
        with torch.no_grad():
            self.l1.bias.fill_(2.0)
            self.l2.bias.fill_(-1.0)
            self.l2.weight.mul_(4.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1 = self.act(self.l1(x))
        return self.out(self.act2(self.l2(h1))) + 3 * torch.relu(-h1 - 0.5).sum(1, keepdim=True)


class _Chain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.out, self.act = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2), nn.Tanh()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.act(self.l2(self.act(self.l1(x)))))


class _ReadBothWays(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.a, self.b = nn.Embedding(10, 4), nn.Linear(20, 2), nn.Linear(20, 2)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.a(torch.tanh(self.emb(ids)).flatten(1)) + self.b(self.emb(ids.flip(1)).flatten(1) ** 2)


def _x() -> torch.Tensor:
    return torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_a_skip_path_closed_off_the_integration_path_is_refused() -> None:
    # before: run with a warning, the attributions summing to 0.0090 on row 0 where f(x) - f(0) is 0.0042 (the same
    # model with its own module at the last call gives 0.0042)
    model = _GatedChain().double().eval()
    with pytest.raises(ValueError, match="runs 2 times and its calls return different values"):
        layer_attribute(model, _x(), "act", "LayerIntegratedGradients", target=0, options={"n_steps": 64})


def test_a_plain_chain_still_runs_and_adds_up() -> None:
    model = _Chain().double().eval()
    x = _x()
    with pytest.warns(UserWarning, match="reads its last call only"):
        got = layer_attribute(model, x, "act", "LayerIntegratedGradients", target=0, options={"n_steps": 256})
    with torch.no_grad():
        h = model.act(model.l2(model.act(model.l1(x))))
        base = model.act(model.l2(model.act(model.l1(torch.zeros_like(x)))))
        want = (model.out(h) - model.out(base))[:, 0]
    torch.testing.assert_close(got.sum(1), want, rtol=0, atol=1e-6)


def test_calls_equal_on_the_first_row_only_are_refused() -> None:
    ids = torch.randint(1, 10, (3, 5), generator=torch.Generator().manual_seed(1))
    ids[0] = torch.tensor([3, 5, 7, 5, 3])  # a palindrome: both reads equal on row 0 only
    model = _ReadBothWays().double().eval()
    with pytest.raises(ValueError, match="runs 2 times and its calls return different values"):
        input_layer_attribute(model, ids, "emb", "LayerIntegratedGradients", target=0)


def test_the_same_ids_embedded_twice_still_run() -> None:
    class Twice(_ReadBothWays):
        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.a(torch.tanh(self.emb(ids)).flatten(1)) + self.b(self.emb(ids).flatten(1) ** 2)

    ids = torch.randint(1, 10, (3, 5), generator=torch.Generator().manual_seed(1))
    with pytest.warns(UserWarning, match="reads its last call only"):
        out = input_layer_attribute(Twice().double().eval(), ids, "emb", "LayerIntegratedGradients", target=0)
    assert out.shape[0] == 3


class _CosineChain(_Chain):
    """A cosine head after the shared activation: 0/0 = NaN at zeros, in both the every-call and the last-call runs."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.act(self.l2(self.act(self.l1(x))))
        return self.out(z / z.norm(dim=1, keepdim=True))


def test_a_chain_whose_output_is_nan_at_zeros_still_runs() -> None:
    # before (second final read of b1058ee5): the zeros point compared NaN with NaN by torch.equal and refused it
    with pytest.warns(UserWarning, match="reads its last call only"):
        out = layer_attribute(_CosineChain().double().eval(), _x(), "act", "LayerIntegratedGradients", target=0)
    assert bool(torch.isfinite(out).all())


def test_other_layer_methods_run_no_pass_of_every_row_to_compare_calls() -> None:
    class Twice(_Chain):  # one activation applied twice to the same tensor: its calls are alike on every row
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.l1(x)
            return self.out(self.l2(self.act(h) * self.act(h)))

    class Own(Twice):
        def __init__(self) -> None:
            super().__init__()
            self.act2 = nn.Tanh()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.l1(x)
            return self.out(self.l2(self.act(h) * self.act2(h)))

    def full_passes(model: nn.Module, layer: str) -> int:
        rows = []
        handle = model.l1.register_forward_hook(lambda _m, i, _o: rows.append(i[0].shape[0]))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                layer_attribute(model, _x(), layer, "LayerGradientXActivation", target=0)
        finally:
            handle.remove()
        return rows.count(_x().shape[0])

    # whether the calls are alike on every row is read for LayerIntegratedGradients alone: no pass of every row
    assert full_passes(Twice().double().eval(), "act") == full_passes(Own().double().eval(), "act2")
