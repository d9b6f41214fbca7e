import json

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.groups import patch_mask
from lightning_causal.causal.structure.layer_map import LayerCausalMap, layer_causal_map, linear_cka
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded


class Dup(nn.Module):
    """l1 -> l2 = 2 Q l1 + 1 (an orthogonal, scaled copy: CKA 1) -> relu -> l3 -> relu -> l4."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.l1, self.l2, self.l3, self.l4 = nn.Linear(8, 16), nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 3)
        with torch.no_grad():
            for lin in (self.l1, self.l3, self.l4):
                lin.weight.copy_(torch.randn(lin.weight.shape, generator=g) / lin.weight.shape[1] ** 0.5)
                lin.bias.copy_(torch.randn(lin.bias.shape, generator=g) * 0.5)
            q, _ = torch.linalg.qr(torch.randn(16, 16, generator=g))
            self.l2.weight.copy_(2 * q)
            self.l2.bias.fill_(1.0)

    def forward(self, x):
        return self.l4(torch.relu(self.l3(torch.relu(self.l2(self.l1(x))))))


X = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
COLS = torch.arange(8).unsqueeze(0)


def _profiles(model, x, layer, baseline=0.0):
    """Reference: Δ_layer for every (group, sample), one intervention at a time."""
    acts = {}
    handle = dict(model.named_modules())[layer].register_forward_hook(lambda m, i, o: acts.__setitem__("h", o.detach()))
    try:
        model(x)
        clean = acts["h"]
        rows = []
        for g in range(x.shape[1]):
            xg = x.clone()
            xg[:, g] = baseline
            model(xg)
            rows.append(clean - acts["h"])
    finally:
        handle.remove()
    return torch.cat(rows)  # group-major rows, like the map


def test_duplicated_layers_merge_and_distinct_layers_stay_apart():
    m = layer_causal_map(Dup(), X, COLS, max_rows=None)
    assert m.layers == ["l1", "l2", "l3", "l4"]
    assert list(m.nodes) == ["<input>", "l1..l2", "l3", "l4", "<output>"]
    assert m.nodes["l1..l2"] == ["l1", "l2"]
    assert float(m.cka[0, 1]) == pytest.approx(1.0, abs=1e-6)
    assert float(m.cka[1, 2]) < 0.9 and float(m.cka[2, 3]) < 0.9
    assert [(s, t) for s, t, _ in m.edges] == [("<input>", "l1..l2"), ("l1..l2", "l3"), ("l3", "l4"), ("l4", "<output>")]


def test_cka_matches_reference_on_explicit_profiles():
    model = Dup()
    m = layer_causal_map(model, X, COLS, max_rows=None)
    with torch.no_grad():
        prof = {name: _profiles(model, X, name) for name in m.layers}
    for i, a in enumerate(m.layers):
        for j, b in enumerate(m.layers):
            assert float(m.cka[i, j]) == pytest.approx(linear_cka(prof[a], prof[b]), abs=1e-6)
    # relative response of l3: E||Δ|| / E||h||
    h3 = model.l3(torch.relu(model.l2(model.l1(X)))).detach()
    assert float(m.response[2]) == pytest.approx(float(prof["l3"].norm(dim=1).mean() / h3.norm(dim=1).mean()), rel=1e-5)


def test_linear_cka_reference_values():
    g = torch.Generator().manual_seed(3)
    x, y = torch.randn(50, 4, generator=g), torch.randn(50, 6, generator=g)
    xc, yc = (x - x.mean(0)).double(), (y - y.mean(0)).double()
    kx, ky = xc @ xc.T, yc @ yc.T  # Gram (HSIC) form
    ref = float((kx * ky).sum() / (kx.norm() * ky.norm()))
    assert linear_cka(x, y) == pytest.approx(ref, rel=1e-9)
    assert linear_cka(x, 3 * x + 1) == pytest.approx(1.0)
    assert linear_cka(torch.ones(5, 2), x[:5]) != linear_cka(torch.ones(5, 2), x[:5])  # NaN for a constant
    with pytest.raises(ValueError, match="same rows"):
        linear_cka(x, y[:10])


def test_output_group_effects_equal_input_effects():
    model = Dup()
    m = layer_causal_map(model, X, COLS, max_rows=None, baseline=0.5)
    ref = input_effects(model, X, COLS, baseline=0.5).abs().mean(0)
    torch.testing.assert_close(m.group_effects["<output>"].float(), ref, rtol=1e-5, atol=1e-6)


def test_threshold_extremes():
    assert list(layer_causal_map(Dup(), X, COLS, threshold=0.0).nodes) == ["<input>", "l1..l4", "<output>"]
    # threshold=1.0 merges exact copies (l2 = l1 here), whose CKA is 1 up to rounding, and nothing else
    assert list(layer_causal_map(Dup(), X, COLS, threshold=1.0).nodes) == ["<input>", "l1..l2", "l3", "l4", "<output>"]


def test_row_subset_is_deterministic_and_close_on_cnn():
    model = seeded(DigitsCNN(channels=(4, 6), hidden=12), 0).eval()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    mask = patch_mask((1, 8, 8), 4)  # 4 groups -> 48 rows
    full = layer_causal_map(model, x, mask, layers=["conv1", "conv2", "fc1"], max_rows=None, max_batch_size=5)
    sub1 = layer_causal_map(model, x, mask, layers=["fc1", "conv1", "conv2"], max_rows=30, seed=1)
    sub2 = layer_causal_map(model, x, mask, layers=["conv1", "conv2", "fc1"], max_rows=30, seed=1)
    assert full.layers == sub1.layers == ["conv1", "conv2", "fc1"]  # sorted into forward order
    torch.testing.assert_close(sub1.cka, sub2.cka)
    assert (sub1.cka - full.cka).abs().max() < 0.2
    assert all_hook_counts(model) == 0


def test_default_layers_and_modes_restored():
    model = DigitsCNN(channels=(3, 4), hidden=8, dropout=0.3).train()
    m = layer_causal_map(model, torch.rand(4, 1, 8, 8), patch_mask((1, 8, 8), 4))
    assert m.layers == ["conv1", "conv2", "fc1", "fc2"]
    assert model.training and model.dropout.training and all_hook_counts(model) == 0


def test_export_round_trip():
    m = layer_causal_map(Dup(), X, COLS)
    d = json.loads(json.dumps(m.to_dict(), allow_nan=False))
    assert d["kind"] == "layer_map"
    back = LayerCausalMap.from_dict(d)
    assert back.to_dict() == d
    assert back.nodes == m.nodes and back.edges == m.edges


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"threshold": 1.5}, ValueError, "Expected argument `threshold`"),
        ({"max_rows": 1}, ValueError, "Expected argument `max_rows`"),
        ({"seed": -1}, ValueError, "Expected argument `seed`"),
        ({"layers": ["l1", "nope"]}, ValueError, "Unknown module name 'nope'"),
        ({"layers": []}, ValueError, "at least one module"),
        ({"feature_mask": COLS.float()}, TypeError, "integer group ids"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"feature_mask": COLS} | kwargs
    with pytest.raises(error, match=match):
        layer_causal_map(Dup(), X, **args)


def test_bad_model_and_data():
    with pytest.raises(ValueError, match=r"returning \[N, outputs\]"):
        layer_causal_map(nn.Sequential(nn.Conv2d(1, 2, 1)), torch.rand(2, 1, 3, 3), patch_mask((1, 3, 3), 3), layers=["0"])
    with pytest.raises(ValueError, match="kind 'layer_map'"):
        LayerCausalMap.from_dict({"kind": "causal_graph"})


class _Encoder(nn.Module):
    """A Linear, one nn.TransformerEncoderLayer (its attention's out_proj never runs as a module), a head."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Linear(3, 8)
        self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(self.enc(self.inp(x)).mean(1))


def test_default_layers_leave_out_modules_that_never_run():
    # the default took every leaf with parameters, out_proj included, and failed on it ("to run in the forward pass")
    torch.manual_seed(0)
    model, x = _Encoder().eval(), torch.randn(6, 5, 3)
    lm = layer_causal_map(model, x, None)
    assert "enc.self_attn.out_proj" not in lm.layers and {"inp", "enc.linear1", "head"} <= set(lm.layers)
    with pytest.raises(ValueError, match=r"'enc.self_attn.out_proj'\] to run in the forward pass"):
        layer_causal_map(model, x, None, ["inp", "enc.self_attn.out_proj"])


def test_padded_steps_keep_their_values_and_their_rows_are_left_out():
    """A sequence model told its lengths ignores the padded steps, but a layer before the pooling
    still reads them: replacing them by a nonzero baseline moved that layer for rows that are
    padding only, and diluted or inflated its response. Padded steps keep their values now, as in
    input_effects, and a group lying in padding is not a row of the map."""
    from lightning_causal.causal import layer_causal_map

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.step, self.head = torch.nn.Linear(2, 3), torch.nn.Linear(3, 2)
            with torch.no_grad():
                for p in self.parameters():
                    p.copy_(torch.randn(p.shape, generator=g))

        def forward(self, x, lengths):
            h = torch.tanh(self.step(x))  # [N, T, 3], every step
            real = (torch.arange(x.shape[1]) < lengths[:, None]).unsqueeze(-1)
            return self.head((h * real).sum(1) / lengths[:, None])

    model = Pooled().double()
    lengths = torch.tensor([6, 4, 3, 5, 2])
    x = torch.randn(5, 6, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    mask = torch.arange(6).view(1, 6, 1)  # one group per step
    got = layer_causal_map(model, x, mask, ["step", "head"], baseline=1.0, additional_forward_args={"lengths": lengths})
    with torch.no_grad():
        clean = model.step(x)
        deltas = []
        for n in range(5):
            for t in range(int(lengths[n])):  # real rows only
                edited = x[n].clone()
                edited[t] = 1.0
                deltas.append((clean[n] - model.step(edited)).norm())
        real = torch.arange(6).view(1, 6, 1) < lengths.view(5, 1, 1)  # the padded steps' activations are no part of h_L
        want = torch.stack(deltas).mean() / (clean * real).flatten(1).norm(dim=1).mean()
    assert float(got.response[0]) == pytest.approx(float(want), rel=1e-12)
    assert got.meta["samples"] == 5 and got.meta["groups"] == 6


class _ShiftedIds(nn.Module):
    """Looks up ``ids + 1`` in a vocabulary of 10: the baseline's bound is not the embedding's size."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb, self.hidden, self.head = nn.Embedding(10, 2), nn.Linear(6, 4), nn.Linear(4, 2)

    def forward(self, ids):
        return self.head(torch.relu(self.hidden(self.emb(ids + 1).flatten(1))))


def test_a_token_baseline_outside_the_vocabulary_is_refused_naming_it():
    model = nn.Sequential(nn.Embedding(10, 2), nn.Flatten(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"`baseline` to be a token id in \[0, 10\) .*'0'.* got 10$"):
        layer_causal_map(model, ids, baseline=10)
    with pytest.raises(ValueError, match="`baseline` to hold token ids the model can look up .* got 9: .*IndexError"):
        layer_causal_map(_ShiftedIds(), ids, baseline=9)
    assert layer_causal_map(_ShiftedIds(), ids, baseline=-1).nodes  # looks up 0: allowed


class _SequenceFirst(nn.Module):
    """nn.TransformerEncoder built with batch_first=False: its layers return [T, N, D]."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.head = nn.Linear(3, 8), nn.Linear(8, 2)
        self.enc = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0), 2, enable_nested_tensor=False)

    def forward(self, x):
        return self.head(self.enc(self.inp(x).transpose(0, 1)).mean(0))


def test_a_layer_that_returns_steps_first_is_refused_even_when_steps_and_samples_are_as_many():
    # 4 samples of 4 steps, 2 groups, 4 rows per pass: [T, N, D] passed every shape check and the map
    # returned a response of 0.3844 for enc.layers.0 where reading it per sample gives 0.4718
    torch.manual_seed(0)
    model, x = _SequenceFirst().eval(), torch.randn(4, 4, 3, generator=torch.Generator().manual_seed(1))
    mask = torch.tensor([0, 0, 1, 1]).view(1, 4, 1)
    with pytest.raises(ValueError, match=r"'enc.layers.0' returned \[4, 4, 8\] for 4 samples but \[4, 2, 8\] for 2.*batch_first=True"):
        layer_causal_map(model, x, mask, ["enc.layers.0"], max_batch_size=4)
    with pytest.raises(ValueError, match=r"'enc.layers.0' returned \[5, 4, 8\] for 4 samples.*batch_first=False"):
        layer_causal_map(model, torch.randn(4, 5, 3), None, ["inp", "enc.layers.0"])
    # the default layers leave the encoder out, now with a warning that names its modules and why
    with pytest.warns(UserWarning, match=r"leaves out .*'enc.layers.0.linear1' returned \[5, 4, 16\].*batch_first"):
        assert layer_causal_map(model, torch.randn(4, 5, 3), None).layers == ["inp", "head"]
    assert all_hook_counts(model) == 0


def test_float64_model_keeps_float64_profiles_so_cka_is_exact():
    """A float64 model's response profiles were cast to float32 before the Gram matrices: CKA was
    exact to about 1e-8 only. They keep the model's precision now (float32 at least)."""
    model = Dup().double()
    x = X.double()
    m = layer_causal_map(model, x, COLS, max_rows=None)
    with torch.no_grad():
        prof = {name: _profiles(model, x, name) for name in m.layers}
    assert m.cka.dtype == torch.float64
    for i, a in enumerate(m.layers):
        for j, b in enumerate(m.layers):
            assert float(m.cka[i, j]) == pytest.approx(linear_cka(prof[a], prof[b]), abs=1e-12)
