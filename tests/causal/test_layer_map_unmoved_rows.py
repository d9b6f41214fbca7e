"""The layer map leaves unrun the rows whose intervention changes nothing (layermap_rows helper): a group whose
elements already hold the baseline on a sample (ReLU-ed inputs at 0 with the zero baseline) feeds the model the
clean sample, and its Δ at every layer, its output and input changes are exactly 0. The rows left unrun are exactly
those (what ``moving_input_rows`` answers, and the rows counted), and the map is that of running every row up to the
rounding of passes of other sizes (:data:`ATOL`)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.ablation import changed_groups
from lightning_causal.causal.engine.batching import rows_alone
from lightning_causal.causal.structure import layer_trace
from lightning_causal.causal.structure.layer_map import layer_causal_map


def _cnn():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.Flatten(), nn.Linear(8 * 8 * 8, 5))


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))


def _relu_inputs(*shape, seed=1):
    return torch.relu(torch.randn(*shape, generator=torch.Generator().manual_seed(seed)))  # about half at 0


CASES = {"cnn": (_cnn, (6, 3, 8, 8)), "mlp": (_mlp, (9, 20))}


#: Leaving rows unrun changes which rows share a pass, and a CPU kernel may block a pass of another size otherwise,
#: reassociating its sums (the layer-map helper saw 1 ulp with passes of 7 rows; 3e-8 in the group effects here on two
#: threads): the map's numbers (float64 from float32 passes, CKA in [0, 1], responses and effects below 1.3 here, a
#: float32 ulp of them 1.2e-7 at most) are compared within 1e-6. Which rows are left unrun is checked exactly
#: (:func:`_assert_leaves_out`), as are the rows counted. A row of these models left unrun by mistake moves the map by
#: 6e-5 or more (the first moving row of the MLP and the CNN).
ATOL = 1e-6


def _every_row(monkeypatch):
    monkeypatch.setattr(layer_trace, "moving_input_rows", lambda *args: None)


def _close(a, b):
    return torch.testing.assert_close(a, b, rtol=0, atol=ATOL, equal_nan=True)


def _assert_same(a, b):
    assert a.layers == b.layers and a.nodes == b.nodes and a.meta.keys() == b.meta.keys()
    for k, v in a.meta.items():
        assert v == pytest.approx(b.meta[k], rel=0, abs=ATOL) if isinstance(v, float) else v == b.meta[k], k
    _close(a.cka, b.cka)
    _close(a.response, b.response)
    assert a.group_effects.keys() == b.group_effects.keys()
    for k in a.group_effects:
        _close(a.group_effects[k], b.group_effects[k])
    assert [(u, v) for u, v, _ in a.edges] == [(u, v) for u, v, _ in b.edges]
    assert [s for _, _, s in a.edges] == pytest.approx([s for _, _, s in b.edges], rel=0, abs=ATOL)


def _recorded_moves(monkeypatch):
    """``moving_input_rows``' answers while the skipping map is made."""
    seen, real = [], layer_trace.moving_input_rows
    monkeypatch.setattr(layer_trace, "moving_input_rows", lambda *args: seen.append(real(*args)) or seen[-1])
    return seen


def _assert_leaves_out(seen, x):
    """One group per element: the rows run are exactly those (group-major, ``grp * N + s``) of the elements off the
    baseline 0 (``-0.0`` counted off it)."""
    off = (x != 0) | torch.signbit(x)
    assert len(seen) == 1 and torch.equal(seen[0], off.reshape(x.shape[0], -1).T.reshape(-1))


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("max_rows", [None, 50])
def test_the_map_is_that_of_every_row_run(case, max_rows, monkeypatch):
    make, shape = CASES[case]
    model, x = make(), _relu_inputs(*shape)
    assert 0.3 < float((x == 0).float().mean()) < 0.7
    seen = _recorded_moves(monkeypatch)
    skipped = layer_causal_map(model, x, max_rows=max_rows)
    _assert_leaves_out(seen, x)
    _every_row(monkeypatch)
    every = layer_causal_map(model, x, max_rows=max_rows)
    _assert_same(skipped, every)
    assert float(skipped.response.min()) > 0  # rows that moved: not a map of zeros


def _rows_run(model, x, **kwargs):
    seen = []
    # the stacked-rows check's rows run alone besides their chunk are not the map's rows
    handle = model[0].register_forward_hook(lambda _m, i, _o: None if rows_alone() else seen.append(i[0].shape[0]))
    try:
        layer_causal_map(model, x, **kwargs)
    finally:
        handle.remove()
    return sum(seen)


@pytest.mark.parametrize("case", list(CASES))
def test_the_rows_whose_group_holds_the_baseline_do_not_run(case, monkeypatch):
    """One group per element: the rows left unrun are the elements at the baseline 0, no more and no fewer (the
    clean and trial passes are the same in both runs)."""
    make, shape = CASES[case]
    model, x = make(), _relu_inputs(*shape)
    skipping = _rows_run(model, x)
    _every_row(monkeypatch)
    every = _rows_run(model, x)
    assert every - skipping == int((x == 0).sum()) > 0


def test_a_per_sample_baseline_leaves_out_the_samples_that_equal_it(monkeypatch):
    """A baseline tensor [N, ...]: samples 0 and 2 are their own baselines (no row of theirs moves), sample 1 moves
    in every element."""
    model, x = _mlp(), torch.randn(3, 20, generator=torch.Generator().manual_seed(3))
    base = x.clone()
    base[1] = 0.5
    skipped = layer_causal_map(model, x, baseline=base, max_rows=None)
    skipping = _rows_run(model, x, baseline=base, max_rows=None)
    # samples 0 and 2 move nothing: each group's mean input change over the 3 samples is |x_1 - 0.5| / 3
    assert torch.allclose(skipped.group_effects["<input>"], (x[1] - 0.5).abs().double() / 3, rtol=1e-6, atol=0)
    _every_row(monkeypatch)
    every = layer_causal_map(model, x, baseline=base, max_rows=None)
    # run, the rows of samples 0 and 2 are the clean samples in a pass of 60 rows, not 3: float32 rounding (5e-8 here)
    assert torch.allclose(skipped.response, every.response, rtol=1e-5, atol=0)
    assert skipped.meta["output_response"] == pytest.approx(every.meta["output_response"], rel=1e-5)
    assert _rows_run(model, x, baseline=base, max_rows=None) - skipping == 2 * 20


def test_a_probe_that_no_intervention_moves_runs_one_row(monkeypatch):
    """Every element at the baseline: the map of zeros (NaN CKA) that running every row gives, after one pass of one
    row that checks the layers' rows and whose numbers are not read."""
    model, x = _mlp(), torch.zeros(4, 20)
    with pytest.warns(UserWarning):
        skipped = layer_causal_map(model, x, max_rows=None)
        skipping = _rows_run(model, x, max_rows=None)
    _every_row(monkeypatch)
    with pytest.warns(UserWarning):
        every = layer_causal_map(model, x, max_rows=None)
        rows = _rows_run(model, x, max_rows=None)
    _assert_same(skipped, every)
    assert float(skipped.response.abs().max()) == 0.0
    assert rows - skipping == 4 * 20 - 1  # one row runs: it checks the layers' rows


class _Noisy(nn.Module):
    """Draws noise from the global generator in eval mode: its rows run in blocks seeded as the clean pass's."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.first, self.head = nn.Linear(6, 8), nn.Linear(8, 2)

    def forward(self, x):
        h = torch.relu(self.first(x))
        return self.head(h + 0.01 * torch.randn_like(h))

    def __getitem__(self, i):
        return [self.first, self.head][i]


def test_a_model_that_draws_noise_runs_every_row(monkeypatch):
    """Its blocks of samples share their seeds' noise: a block of other rows draws other noise, so no row is left out
    (the noise of the rows that run must stay that of the clean pass)."""
    model, x = _Noisy(), _relu_inputs(8, 6)
    with pytest.warns(UserWarning, match="random"):
        skipping = _rows_run(model, x, max_rows=None)
    _every_row(monkeypatch)
    with pytest.warns(UserWarning, match="random"):
        assert _rows_run(model, x, max_rows=None) == skipping


def test_changed_groups_tells_the_signs_of_zero_apart_and_leaves_out_padding():
    x = torch.tensor([[0.0, -0.0, 1.0, 2.0]])
    masks = (torch.tensor([[0, 1, 2, 3]]),)
    assert changed_groups((x,), masks, (torch.zeros(1, 1),), 4).tolist() == [[False, True, True, True]]
    assert changed_groups((x,), masks, (torch.full((1, 1), -0.0),), 4).tolist() == [[True, False, True, True]]
    pad = torch.tensor([[False, False, False, True]])
    assert changed_groups((x,), masks, (torch.zeros(1, 1),), 4, (pad,)).tolist() == [[False, True, True, False]]
    ids = torch.tensor([[5, 7, 5]])  # token ids against the pad id 5, group 1 holding no element
    assert changed_groups((ids,), (torch.tensor([[0, 2, 0]]),), (torch.full((1, 1), 5),), 3).tolist() == [[False, False, True]]


class _Atan2(nn.Module):
    """atan2(x, -1): π at +0.0, -π at -0.0, a model that reads the sign of a zero."""

    def forward(self, x):
        return torch.atan2(x, -torch.ones_like(x))


def test_input_effects_runs_a_negative_zero_set_to_the_baseline_zero():
    """-0.0 == 0.0, but the row that sets -0.0 to 0.0 moves this model by 2π: it runs (before, read as unchanged, its
    effect was 0)."""
    from lightning_causal.causal.effects.input_effects import input_effects

    x = torch.tensor([[-0.0, 0.0]])
    effects = input_effects(_Atan2(), x, torch.tensor([[0, 1]]), baseline=0.0, target=0)
    assert effects[0].tolist() == pytest.approx([-2 * torch.pi, 0.0])


class _SignedEmbedding(nn.Module):
    """Token 1 embeds to -0.0, the baseline token 0 to 0.0; atan2(e, -1) reads the sign: -π against π a dimension."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(3, 2)
        with torch.no_grad():
            self.emb.weight.copy_(torch.tensor([[0.0, 0.0], [-0.0, -0.0], [1.0, 2.0]]))

    def forward(self, x):
        h = self.emb(x)
        return torch.atan2(h, -torch.ones_like(h)).sum((1, 2)).unsqueeze(1)


def test_input_effects_at_an_input_layer_run_a_negative_zero_set_to_the_reference_zero():
    """``input_layer=`` took the rows whose layer output equals the reference as numbers (h != ref) for unchanged, so
    token 1's -0.0 embedding set to token 0's 0.0 had effect 0; it calls ``changed_groups`` now: -4π (two dimensions,
    -π each against π)."""
    from lightning_causal.causal.effects.input_effects import input_effects

    effects = input_effects(_SignedEmbedding(), torch.tensor([[1, 2]]), input_layer="emb", baseline=0, target=0)
    assert effects[0, 0].item() == pytest.approx(-4 * torch.pi)
    expected = torch.atan2(torch.tensor([1.0, 2.0]), torch.tensor(-1.0)).sum() - torch.pi * 2  # token 2 against 0.0
    assert effects[0, 1].item() == pytest.approx(expected.item())
