"""Where a layer's features are, read from one forward pass: the default units (dimension 1) are
refused where they would be the positions of a ``[N, T, D]`` output (silently wrong before)."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import causal_graph, intervene, unit_effects
from lightning_causal.causal.engine.interventions import Intervention, Zero
from lightning_causal.causal.engine.unit_sites import SiteFacts, check_default_units, inspect_site


class TokenMLP(nn.Module):
    """Embedding, a Linear + ReLU block on [N, T, D], mean over positions, a head."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.fc = nn.Linear(8, 16)
        self.act = nn.ReLU()
        self.head = nn.Linear(16, 3)

    def forward(self, ids):
        return self.head(self.act(self.fc(self.emb(ids))).mean(1))


class Intermediate(nn.Module):
    """BERT's intermediate block: a Linear and a functional activation (not a module)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = nn.Linear(8, 12)

    def forward(self, h):
        return F.gelu(self.dense(h))


class ChannelsLast(nn.Module):
    """A ConvNeXt-style block: a depthwise conv, then a Linear over channels in [N, H, W, C]."""

    def __init__(self) -> None:
        super().__init__()
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.pw = nn.Linear(4, 4)

    def forward(self, x):
        return self.pw(self.dw(x).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _facts(model, name, *x):
    return inspect_site(model, name, lambda: model(*x))


@pytest.mark.parametrize("build, name, x, last", [
    (lambda: nn.Sequential(nn.Linear(8, 6)), "0", torch.rand(2, 5, 8), True),
    (lambda: nn.Sequential(nn.Embedding(9, 4)), "0", torch.zeros(2, 5, dtype=torch.long), True),
    (lambda: nn.Sequential(nn.Linear(8, 6), nn.GELU()), "1", torch.rand(2, 5, 8), True),  # activation after a Linear
    (lambda: nn.Sequential(nn.Linear(8, 6), nn.ReLU(inplace=True)), "1", torch.rand(2, 5, 8), True),
    (lambda: nn.Sequential(nn.Linear(8, 6), nn.Dropout(), nn.GELU(), nn.Tanh()), "3", torch.rand(2, 5, 8), True),  # traced back
    (lambda: nn.Sequential(nn.Conv1d(3, 6, 3), nn.GELU(), nn.Tanh()), "2", torch.rand(2, 3, 9), False),
    (lambda: nn.Sequential(Intermediate()), "0", torch.rand(2, 5, 8), True),  # a block: its Linear has the output's shape
    (lambda: nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)), "0", torch.rand(2, 5, 8), True),
    (lambda: nn.Sequential(nn.LSTM(8, 6, batch_first=True)), "0", torch.rand(2, 5, 8), True),
    (lambda: nn.Sequential(ChannelsLast()), "0.pw", torch.rand(2, 4, 5, 5), True),  # [N, H, W, C]
    (lambda: nn.Sequential(nn.Conv1d(3, 6, 3)), "0", torch.rand(2, 3, 9), False),
    (lambda: nn.Sequential(nn.Conv1d(3, 6, 3), nn.ReLU()), "1", torch.rand(2, 3, 9), False),
    (lambda: nn.Sequential(nn.Sequential(nn.Conv1d(3, 6, 3), nn.Linear(7, 7))), "0", torch.rand(2, 3, 9), False),  # convolves
    (lambda: nn.Sequential(nn.Conv1d(3, 6, 3), nn.BatchNorm1d(6)), "1", torch.rand(2, 3, 9), False),
    (lambda: nn.Sequential(ChannelsLast()), "0", torch.rand(2, 4, 5, 5), False),  # back to [N, C, H, W]
])
def test_features_last_is_read_from_the_layer_and_what_feeds_it(build, name, x, last):
    torch.manual_seed(0)
    model = build().eval()
    facts = _facts(model, name, x)
    assert facts.features_last is last
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_projected_is_the_output_of_a_mixing_layer_inside():
    block = nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)), nn.Sequential(nn.Linear(4, 4), nn.GELU()))
    x = torch.rand(2, 3, 4)
    assert _facts(block, "0", x).projected and not _facts(block, "1", x).projected


def test_hooks_are_removed_when_the_pass_fails_and_an_uncalled_layer_is_named():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    with pytest.raises(RuntimeError):
        inspect_site(model, "1", lambda: model(torch.rand(2, 3)))  # 3 features: the first Linear fails
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    with pytest.raises(ValueError, match="'1' to be called"):
        inspect_site(model, "1", lambda: model[0](torch.rand(2, 4)))


def test_check_default_units_only_refuses_the_default_on_features_last_outputs():
    seq = SiteFacts(projected=False, features_last=True, shape=(1, 5, 16))
    with pytest.raises(ValueError, match=r"'fc'.*\[1, 5, 16\].*holds positions\. use this"):
        check_default_units("fc", seq, None, None, "use this")
    check_default_units("fc", seq, -1, None, "")  # chosen: neurons
    check_default_units("fc", seq, 1, None, "")   # chosen: positions
    check_default_units("fc", seq, None, 4, "")   # heads on the last dimension
    check_default_units("fc", SiteFacts(False, True, (1, 16)), None, None, "")   # [N, D]: dimension 1 is the features
    check_default_units("conv", SiteFacts(False, False, (1, 6, 9)), None, None, "")


def test_unit_effects_refuse_positions_by_default_and_give_neurons_with_unit_dim():
    torch.manual_seed(0)
    model, ids = TokenMLP().eval(), torch.randint(0, 20, (4, 5))
    for layer in ("fc", "act", "emb"):
        with pytest.raises(ValueError, match=f"'{layer}'.*`unit_dim=-1`"):
            unit_effects(model, ids, layer)
    got = unit_effects(model, ids, "act", unit_dim=-1, target=0)
    assert got.shape == (4, 16)
    with torch.no_grad():
        full = model(ids)[:, 0]
        for u in (0, 7, 15):  # neuron u zeroed at every position, by hand
            with intervene(model, {"act": Zero(units=[u], unit_dim=-1)}):
                torch.testing.assert_close(got[:, u], full - model(ids)[:, 0])
    assert unit_effects(model, ids, "act", unit_dim=1, target=0).shape == (4, 5)  # positions, asked for


def test_causal_graph_refuses_positions_by_default_and_takes_conv1d_channels():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"'fc'.*features last.*`unit_dim=-1` \(for all layers"):
        causal_graph(TokenMLP().eval(), torch.randint(0, 20, (8, 5)), ["fc", "act"])
    conv = nn.Sequential(nn.Conv1d(2, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 7, 2)).eval()
    g = causal_graph(conv, torch.rand(16, 2, 9), ["1"], top_k=2)
    assert all(n.startswith(("1:", "output:")) and (n.startswith("output") or int(n[2:]) < 4) for n in g.nodes)


def test_the_pass_stops_once_the_layer_has_returned():
    class SqueezesTheBatch(nn.Module):  # fails on one sample after the layer: never reached
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.out = nn.Linear(4, 6), nn.Linear(6, 2)

        def forward(self, x):
            return self.out(self.fc(x).squeeze().mean(1))  # one sample: [5, 6] -> mean(1) -> [5], out fails

    model = SqueezesTheBatch().eval()
    facts = inspect_site(model, "fc", lambda: model(torch.rand(1, 5, 4)))
    assert facts.features_last and facts.shape == (1, 5, 6)


class SeqFirstLSTM(nn.Module):
    """PyTorch's default recurrent layout: the LSTM returns [T, N, H]."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = nn.LSTM(3, 5), nn.Linear(5, 3)

    def forward(self, x):  # x: [N, T, F]
        out, _ = self.rnn(x.transpose(0, 1))
        return self.head(out[-1])


@pytest.mark.parametrize("n, t", [(5, 5), (6, 7), (7, 1)])
def test_a_layer_whose_dimension_0_is_not_the_samples_is_refused(n, t):
    # it crashed deep in the row engine (IndexError, invalid view) or, with N == T, could mix samples and steps
    model, x = SeqFirstLSTM().eval(), torch.randn(n, t, 3)
    for use_suffix in (True, False):
        with pytest.raises(ValueError, match=r"dimension 0 of the output of 'rnn' to be the samples.*batch_first=True"):
            unit_effects(model, x, "rnn", unit_dim=-1, use_suffix=use_suffix)
    with pytest.raises(ValueError, match="batch_first=True"):
        causal_graph(model, x, ["rnn", "head"], unit_dim={"rnn": -1, "head": 1})


def test_the_out_proj_of_torch_attention_sends_num_heads_to_its_input():
    # nn.MultiheadAttention uses out_proj's weight functionally; its input (the heads) is a site, its
    # output is refused with num_heads (an output projection mixes the heads) naming that site
    class Enc(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.enc, self.head = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True), nn.Linear(8, 2)

        def forward(self, x):
            return self.head(self.enc(x).mean(1))

    model, x = Enc().eval(), torch.randn(3, 4, 8)
    with pytest.raises(ValueError, match=r"out_proj of a torch.nn.MultiheadAttention.*name the site 'enc.self_attn.out_proj:input'"):
        unit_effects(model, x, "enc.self_attn.out_proj", num_heads=2)
    assert unit_effects(model, x, "enc.self_attn.out_proj:input", num_heads=2).shape == (3, 2)


def test_a_packed_recurrent_layer_is_named_as_returning_a_packed_sequence():
    # an LSTM run on pack_padded_sequence returns (PackedSequence, (h, c)): the message said only
    # "Expected module 'rnn' to be called by the forward pass", though the layer ran
    class Packed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn, self.head = nn.LSTM(3, 4, batch_first=True), nn.Linear(4, 2)

        def forward(self, x, lengths):
            _, (h, _) = self.rnn(nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
            return self.head(h[-1])

    model, x, lengths = Packed().eval(), torch.randn(3, 5, 3), torch.tensor([5, 2, 4])
    with pytest.raises(ValueError, match=r"'rnn'.*returns a PackedSequence.*'head:input'"):
        unit_effects(model, x, "rnn", unit_dim=-1, additional_forward_args={"lengths": lengths})
    assert unit_effects(model, x, "head:input", unit_dim=-1, additional_forward_args={"lengths": lengths}).shape == (3, 4)


class _Squeeze(nn.Module):
    def forward(self, x):
        return x.squeeze(-1)


def _scalar_regressor() -> nn.Sequential:
    """A regression head registered as modules: Linear(4, 1) then squeeze(-1), so '3' returns [N]."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1), _Squeeze())


def test_a_one_dimensional_site_is_refused_naming_the_layer_and_its_shape():
    model, x = _scalar_regressor(), torch.randn(5, 3)
    named = r"output of '3' to have a unit dimension \(\[N, U, \.\.\.\].* shape \[{}\]{}.*, one value per sample.*'3:input'"
    with pytest.raises(ValueError, match=named.format(1, " in a pass of 1 sample")):
        unit_effects(model, x, "3")
    with pytest.raises(ValueError, match=named.format(1, " in a pass of 1 sample")):
        causal_graph(model, x, ["0", "3"])
    with pytest.raises(ValueError, match=named.format(5, "")), intervene(model, {"3": Zero(units=0)}):
        model(x)
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0
    got = unit_effects(model, x, "2")  # the [N, 1] Linear before the squeeze: one unit
    with torch.no_grad():
        torch.testing.assert_close(got, model(x).unsqueeze(1))  # do(h := 0) makes the output 0


class _ClampAtZero(Intervention):
    """A user's intervention with its own ``__call__``: it needs no units."""

    def __call__(self, output):
        return output.clamp(max=0.0)


def test_an_intervention_with_its_own_call_still_edits_a_one_dimensional_site():
    model, x = _scalar_regressor(), torch.randn(5, 3)
    with torch.no_grad(), intervene(model, {"3": _ClampAtZero()}):
        got = model(x)
    with torch.no_grad():
        torch.testing.assert_close(got, model(x).clamp(max=0.0))
