"""Review of 6a80149c (keeping_graph): what it costs a model that takes no gradients in its forward pass.

The trial pass of every prefix cache moved the layer's whole probe value to take two rows of it (an extra copy of
the cache: +245 MiB peak for a [1024, 64, 32, 32] layer on the fx path), and every full-path pass gathered the
rows' clean value that only a forward recording gradients through the layer reads. Both are now taken for the
rows that run, and only where the live output records a graph.
"""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine import prefix_cache as prefix_module
from lightning_causal.causal.engine.prefix_cache import cache_prefix


class _Forces(nn.Module):
    """F = -dE/dx, taken by torch.autograd.grad in forward."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            return -torch.autograd.grad(self.net(x).sum(), x, create_graph=True)[0]


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).eval()


def test_the_trial_pass_moves_the_two_trial_rows_only(monkeypatch):
    moved_rows = []
    real = prefix_module.moved_value

    def spy(value, observed=None):
        moved_rows.append(value.shape[0])
        return real(value, observed)

    monkeypatch.setattr(prefix_module, "moved_value", spy)
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    for path in ("fx", "hooks", "full"):
        with torch.no_grad():
            cache = cache_prefix(_mlp(), x, "1", path=path)
        assert cache.path == path
    assert moved_rows and max(moved_rows) == 2  # before: 64, the whole probe's value, at every trial pass


def test_a_full_pass_reads_the_clean_value_only_where_the_forward_records_gradients():
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    rows = torch.tensor([4, 1])
    for model, layer, reads in ((_mlp(), "1", 0), (_Forces().eval(), "net.1", 1)):
        with torch.no_grad():
            cache = cache_prefix(model, x, layer, path="full")
        clean, read = cache.value, []
        cache._runner.clean = lambda r, clean=clean, read=read: read.append(r) or clean[r]  # before: only a tensor, indexed in every pass
        with torch.no_grad():
            out = cache(cache.value[rows], rows)
        assert len(read) == reads
        torch.testing.assert_close(out.detach(), model(x[rows]).detach())


def test_the_cache_of_a_forward_taking_gradients_holds_no_graph_of_the_probe_pass():
    # before: cache.value and cache.output of the full path kept the probe pass's autograd graph (the model's
    # create_graph=True) for the cache's lifetime: 190 MiB beside a value of 32 MiB at 8192 samples of width 1024
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(2))
    model = _Forces().eval()
    with torch.no_grad():
        cache = cache_prefix(model, x, "net.1", path="full")
    assert cache.records_gradients
    assert cache.value.grad_fn is None and cache.output.grad_fn is None
    torch.testing.assert_close(cache.value, torch.tanh(model.net[0](x)).detach())
    torch.testing.assert_close(cache.output, model(x).detach())
    rows = torch.tensor([5, 0])
    with torch.no_grad():
        out = cache(cache.value[rows], rows)  # the clean rows still differentiate through the layer's live output
    torch.testing.assert_close(out.detach(), model(x[rows]).detach())


class _SwitchesAutogradOn(nn.Module):
    """Switches autograd on in forward and takes no gradient; control flow on a tensor: no fx path."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > -1e9:
            with torch.enable_grad():
                return self.net(x)
        return x[:, :2]


@pytest.mark.parametrize("use_suffix", [True, False])
def test_atp_of_a_forward_that_only_switches_autograd_on_is_the_linear_readout(use_suffix):
    # before (965b51e4): refused as "the model takes gradients in its forward pass", on the hooks and full paths alike
    torch.manual_seed(0)
    model, x = _SwitchesAutogradOn().eval(), torch.randn(5, 3)
    got, info = unit_effects(model, x, "net.1", unit_dim=-1, target=0, method="atp", use_suffix=use_suffix, return_info=True)
    assert info.path == ("hooks" if use_suffix else "full")
    with torch.no_grad():
        hand = model.net[2].weight[0] * torch.tanh(model.net[0](x))  # d y_0 / d h_u · (h_u - 0): a linear read-out
    torch.testing.assert_close(got, hand)


def test_atp_of_forces_with_a_path_around_the_layer_is_still_refused():
    class Skip(_Forces):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            with torch.enable_grad():
                x = x if x.requires_grad else x.detach().requires_grad_(True)
                energy = self.net(x).sum() + 0.5 * (x**2).sum()  # the layer's constants leave x in the graph
                return -torch.autograd.grad(energy, x, create_graph=True)[0]

    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"takes gradients in its forward pass"):
        unit_effects(Skip().eval(), torch.randn(5, 3), "net.1", unit_dim=-1, target=0, method="atp")


def test_a_screen_on_forces_is_told_to_go_without_it():
    # before: "Use method='exact'", which the user of method='exact', screen=2 had already passed
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"Use method='exact' without screen="):
        unit_effects(_Forces().eval(), torch.randn(5, 3), "net.1", unit_dim=-1, target=0, screen=2)
