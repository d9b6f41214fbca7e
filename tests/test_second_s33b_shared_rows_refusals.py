"""The shared-rows check (review_s33a's check_site_units_named, run where the one-sample site check refuses, for the
causal graph, Captum's layer methods and the fairness carriers) must name rows every sample shares and otherwise leave
the site check's refusal as it was: a module the pass never calls (an expert no row is routed to, an
nn.MultiheadAttention's out_proj) gave a bare KeyError, and an expert called on no row got the words for rows every
sample shares ('the same 0 rows for all samples ... a hypernetwork'). The hint on candidates read by the row's place
(place_paired_hint, for any number of candidates marked whole since ac84ae50) named a CLIP-like model's candidates for
a node classifier's logits [N, 2] beside an edge_index of 2 rows marked whole (review of cd9c32ad, aef7cccb,
ac84ae50)."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import layer_attribute
from lightning_causal.causal import carrier_unit_effects, causal_graph, input_effects, unit_effects
from lightning_causal.causal.engine.folded_rows import check_site_units_named
from lightning_causal.causal.engine.forward_args import mark_whole
from lightning_causal.causal.engine.unit_sites import check_site_units


class MoE(nn.Module):
    """Top-1 routing over 3 experts; ``skip``: an expert no row is routed to is not called (else called on 0 rows)."""

    def __init__(self, skip):
        super().__init__()
        torch.manual_seed(0)
        self.skip = skip
        self.inp = nn.Linear(4, 6)
        self.gate = nn.Linear(6, 3)
        self.experts = nn.ModuleList(nn.Linear(6, 6) for _ in range(3))
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        h = torch.relu(self.inp(x))
        k = self.gate(h).argmax(1)
        out = torch.zeros_like(h)
        for e, m in enumerate(self.experts):
            sel = k == e
            if self.skip and not sel.any():
                continue
            out[sel] = m(h[sel])
        return self.head(out)


class Attention(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp = nn.Linear(3, 8)
        self.att = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        h = self.inp(x)
        return self.head(self.att(h, h, h)[0].mean(1))


X4 = torch.rand(8, 4, generator=torch.Generator().manual_seed(2))
X3 = torch.rand(6, 5, 3, generator=torch.Generator().manual_seed(1))


def _refusal(estimator, model, x, layer, **kw):
    with pytest.raises(ValueError) as err:
        if estimator == "graph":
            causal_graph(model, x, layers=[layer], target=0, **kw)
        elif estimator == "captum":
            layer_attribute(model, x, layer, "LayerGradientXActivation", target=0, **kw)
        else:
            carrier_unit_effects(model, x, lambda v: 1 - v, layer, target=0, **kw)
    return str(err.value)


@pytest.mark.parametrize("estimator", ["graph", "captum", "carriers"])
def test_a_module_the_pass_never_calls_keeps_its_refusal(estimator):
    # experts 0 and 1 get no row of the probe's first samples (expert 2 takes them): not called at all
    assert "did not run on the first probe sample" in _refusal(estimator, MoE(True).eval(), X4, "experts.0")
    text = _refusal(estimator, Attention().eval(), X3, "att.out_proj", unit_dim=-1)
    assert "out_proj of a torch.nn.MultiheadAttention" in text and "'att.out_proj:input'" in text


@pytest.mark.parametrize("estimator", ["graph", "captum", "carriers"])
def test_an_expert_called_on_no_row_is_named_an_expert(estimator):
    text = _refusal(estimator, MoE(False).eval(), X4, "experts.0")
    assert "0 row(s), fewer than the batch" in text and "an expert of a mixture" in text
    assert "the same 0 rows" not in text and "hypernetwork" not in text


def test_the_named_check_refuses_as_the_site_check_and_adds_no_pass_where_it_accepts():
    """Where the rows are not shared, the words are check_site_units's own; an accepted layer costs its one pass."""
    model = MoE(False).eval()
    calls = []
    model.register_forward_pre_hook(lambda *_: calls.append(1))
    run = lambda xi, _rows: model(*xi)  # noqa: E731
    check_site_units_named(model, "inp", run, (X4,), None, None, "")
    assert len(calls) == 1
    with pytest.raises(ValueError) as plain:
        check_site_units(model, "experts.0", lambda: model(X4[:1]), None, None, "fix")
    with pytest.raises(ValueError) as named:
        check_site_units_named(model, "experts.0", run, (X4,), None, None, "fix")
    assert str(named.value) == str(plain.value)


class NodeClassifier(nn.Module):
    """A graph neural network over the nodes (the rows) linked by an edge_index [2, E]: logits [N, 2], two classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 5)
        self.head = nn.Linear(5, 2)

    def forward(self, x, edge_index):
        h = self.lin(x)
        src, dst = edge_index
        return self.head(torch.relu(h + torch.zeros_like(h).index_add(0, dst, h[src])))


@pytest.mark.parametrize("estimator", [unit_effects, input_effects])
def test_node_logits_beside_an_edge_index_marked_whole_name_no_candidates(estimator):
    """A probe's subset marks the edge_index whole (what the probe passes whole): its 2 rows are no candidates that
    logits [N, 2] read by place; the graph's words stand alone."""
    x = torch.rand(6, 3, generator=torch.Generator().manual_seed(0))
    edges = mark_whole((torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 0]]),), [0])
    args = ("lin",) if estimator is unit_effects else ()
    with pytest.raises(ValueError, match="edge_index") as err:
        estimator(NodeClassifier().eval(), x, *args, output=lambda o: o.log_softmax(1), target=0,
                  additional_forward_args=edges)
    assert "candidates passed whole" not in str(err.value)
