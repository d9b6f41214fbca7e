"""Layers that fold positions into the batch (``[N·T, F]``, as OPT's MLP): `unit_effects` intervenes
on a neuron in every one of a sample's rows. Checked against a float64 brute-force loop of plain
forward hooks, for do-grids, chunking and the audit; layers whose rows are not sample after sample,
and interventions that read folded rows, are refused."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import MeanOf, Resample, Scale, SetTo, Zero, unit_effects


class _FoldedMLP(nn.Module):
    """``h [N, T, D] -> h + fc2(relu(fc1(h.reshape(N·T, D))))``; ``positions_first``: folds ``[T·N, D]``."""

    def __init__(self, d: int = 6, f: int = 10, positions_first: bool = False) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2, self.positions_first = nn.Linear(d, f), nn.ReLU(), nn.Linear(f, d), positions_first

    def forward(self, h):
        n, t, d = h.shape
        x = h.transpose(0, 1).reshape(-1, d) if self.positions_first else h.reshape(-1, d)
        x = self.fc2(self.act(self.fc1(x)))
        return h + (x.view(t, n, d).transpose(0, 1) if self.positions_first else x.view(n, t, d))


class _Model(nn.Module):
    def __init__(self, positions_first: bool = False) -> None:
        super().__init__()
        self.emb, self.layer, self.head = nn.Embedding(20, 6), _FoldedMLP(positions_first=positions_first), nn.Linear(6, 3)

    def forward(self, ids):
        return self.head(self.layer(self.emb(ids)).mean(1))


def _setup(positions_first: bool = False):
    torch.manual_seed(0)
    model = _Model(positions_first).double().eval()
    ids = torch.randint(0, 20, (5, 7), generator=torch.Generator().manual_seed(1))
    return model, ids


def _brute(model, ids, site, edit, units, target=1):
    """f_t(x) - f_t(x | do(edit on unit u of every row of `site`)), one hooked pass per unit."""
    module = model.get_submodule(site)
    with torch.no_grad():
        full = model(ids)[:, target]
        cols = []
        for u in units:
            def hook(_m, _i, out, u=u):
                out = out.clone()
                out[:, u] = edit(out[:, u])
                return out
            handle = module.register_forward_hook(hook)
            try:
                cols.append(full - model(ids)[:, target])
            finally:
                handle.remove()
    return torch.stack(cols, 1)


def test_neurons_of_a_folded_layer_equal_brute_force_hooks_and_run_full_passes():
    model, ids = _setup()
    got, info = unit_effects(model, ids, "layer.fc1", target=1, return_info=True)
    ref = _brute(model, ids, "layer.fc1", torch.zeros_like, range(10))
    assert got.shape == (5, 10) and ref.abs().max() > 1e-3
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-13)
    assert info.path == "full" and "folds 7 rows per sample" in info.reason
    # chunks of 3 rows: blocks of 7 folded rows never straddle two intervention rows wrongly
    torch.testing.assert_close(unit_effects(model, ids, "layer.fc1", target=1, max_batch_size=3), ref, rtol=0, atol=1e-13)
    # a unit subset, and the folded layer's own later sites (relu output, fc2's features)
    torch.testing.assert_close(unit_effects(model, ids, "layer.act", Zero(units=[2, 7]), target=1),
                               _brute(model, ids, "layer.act", torch.zeros_like, [2, 7]), rtol=0, atol=1e-13)
    torch.testing.assert_close(unit_effects(model, ids, "layer.fc2", target=1),
                               _brute(model, ids, "layer.fc2", torch.zeros_like, range(6)), rtol=0, atol=1e-13)


def test_do_grids_and_scaling_on_a_folded_layer():
    model, ids = _setup()
    got = unit_effects(model, ids, "layer.fc1", [SetTo(0.0), SetTo(1.5)], target=2)
    lo = _brute(model, ids, "layer.fc1", lambda v: torch.zeros_like(v), range(10), target=2)
    hi = _brute(model, ids, "layer.fc1", lambda v: torch.full_like(v, 1.5), range(10), target=2)
    # a do-grid's effect is the range of the target over the grid: max - min of f(x | do(u := a))
    torch.testing.assert_close(got, (lo - hi).abs(), rtol=0, atol=1e-13)
    torch.testing.assert_close(unit_effects(model, ids, "layer.fc1", Scale(3.0), target=2),
                               _brute(model, ids, "layer.fc1", lambda v: 3.0 * v, range(10), target=2), rtol=0, atol=1e-13)


def test_unit_importance_audit_on_a_folded_layer():
    model, ids = _setup()
    result = UnitImportanceAudit(["layer.fc1"], top_k=3, target=1).run(model, Probe(ids, torch.zeros(5, dtype=torch.long)))
    ref = _brute(model, ids, "layer.fc1", torch.zeros_like, range(10)).abs().mean(0)
    torch.testing.assert_close(result.vectors["importance/layer.fc1"], ref, rtol=0, atol=1e-13)
    assert result.meta["path/layer.fc1"] == "full"


def test_a_layer_folding_positions_first_is_refused():
    model, ids = _setup(positions_first=True)
    with pytest.raises(ValueError, match=r"rows interleaved or changed.*positions first"):
        unit_effects(model, ids, "layer.fc1", target=1)


def test_what_a_folded_layer_cannot_answer_is_refused_by_name():
    model, ids = _setup()
    with pytest.raises(ValueError, match=r"method='exact' without `screen`.*folds 7 rows per sample"):
        unit_effects(model, ids, "layer.fc1", method="attribution")
    with pytest.raises(ValueError, match=r"method='exact' without `screen`"):
        unit_effects(model, ids, "layer.fc1", screen=2)
    reference = torch.rand(35, 10, dtype=torch.float64)
    for iv in (MeanOf(reference), Resample(reference)):
        with pytest.raises(ValueError, match=rf"Zero, SetTo or Scale.*but got {type(iv).__name__}"):
            unit_effects(model, ids, "layer.fc1", iv)
    with pytest.raises(ValueError, match=r"at least two distinct probe samples"):
        unit_effects(model, ids[:1].expand(3, -1), "layer.fc1")


def test_a_layer_with_one_row_per_sample_is_unchanged():
    model, ids = _setup()
    # the embedding keeps the samples first: the prefix cache runs, no fold
    _, info = unit_effects(model, ids, "emb", unit_dim=-1, target=1, return_info=True)
    assert info.path in ("fx", "hooks") and "folds" not in info.reason
