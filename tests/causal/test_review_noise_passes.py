"""Review of 1f26650: every estimator call ran a detection pass of 8 probe samples (does a global
generator move?) before its clean pass, which already answers that. input_effects,
interventional_expectations (and input_effects at an input_layer), layer_causal_map, causal_graph,
graph_faithfulness, the deletion/insertion curves, counterfactual_fairness_gap and trigger_effect now watch the
generators over their clean pass (noise.GeneratorWatch): a deterministic model costs no pass of
its own, and a model that draws is still found (common random numbers, or the warning)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    AttributeFlip,
    causal_graph,
    counterfactual_fairness_gap,
    graph_faithfulness,
    input_effects,
    interventional_expectations,
    layer_causal_map,
)
from lightning_causal.causal.backdoor.triggers import Trigger, trigger_effect
from lightning_causal.causal.engine.noise import DRAW_SAMPLES

N = 20  # more than DRAW_SAMPLES: a detection pass is the only pass of DRAW_SAMPLES rows


def _mlp(drop: bool = False) -> nn.Module:
    torch.manual_seed(0)

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1, self.fc2, self.out = nn.Linear(4, 6), nn.Linear(6, 5), nn.Linear(5, 2)

        def forward(self, x):
            h = torch.relu(self.fc1(x))
            h = nn.functional.dropout(h, 0.3, training=True) if drop else h  # MC dropout kept on in eval
            return self.out(torch.relu(self.fc2(h)))

    return MLP().double().eval()


X = torch.randn(N, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
XA = torch.cat([(X[:, :1] > 0).double(), X[:, 1:]], 1)  # column 0 a binary sensitive attribute


def _graph(m):
    return causal_graph(m, X, ["fc1", "fc2"], top_k=2, target=0, max_batch_size=4096)


def _curve(m):
    from lightning_causal.baselines.metrics import perturbation_curve
    from lightning_causal.causal import column_mask

    scores = torch.arange(4, dtype=torch.float64).expand(N, 4)
    return perturbation_curve(m, X, column_mask(4), scores, target=0, score="raw", max_batch_size=4096)


CALLS = {
    "input_effects": lambda m: input_effects(m, X, target=0, max_batch_size=4096),
    "interventional_expectations": lambda m: interventional_expectations(m, X, values=torch.tensor([0.0, 1.0]), target=0,
                                                                         max_batch_size=4096),
    "layer_causal_map": lambda m: layer_causal_map(m, X, max_batch_size=4096),
    "causal_graph": _graph,
    "graph_faithfulness": lambda m: graph_faithfulness(m, X, _graph(m), target=0, max_batch_size=4096),
    "perturbation_curve": _curve,
    "counterfactual_fairness_gap": lambda m: counterfactual_fairness_gap(m, XA, AttributeFlip(0), target=0, max_batch_size=4096),
    "trigger_effect": lambda m: trigger_effect(m, X, Trigger(torch.tensor([1.0, 0.0, 0.0, 0.0]), 2.0, 1), max_batch_size=4096),
}


@pytest.mark.parametrize("name", list(CALLS))
def test_a_deterministic_model_costs_no_detection_pass(name):
    model = _mlp()
    rows: list[int] = []
    model.register_forward_pre_hook(lambda _m, inp: rows.append(inp[0].shape[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # and no noise warning
        CALLS[name](model)
    assert DRAW_SAMPLES not in rows and rows  # passes of N rows, and of 1-2 rows (site and batch checks), none of 8


@pytest.mark.parametrize("name", list(CALLS))
def test_a_model_that_draws_is_still_found(name):
    with pytest.warns(UserWarning, match="The model draws random numbers in eval mode"):
        CALLS[name](_mlp(drop=True))


class Tokens(nn.Module):
    def __init__(self, drop: bool) -> None:
        super().__init__()
        self.drop, self.emb, self.out = drop, nn.Embedding(7, 4), nn.Linear(4, 2)

    def forward(self, ids):
        h = self.emb(ids)
        h = nn.functional.dropout(h, 0.3, training=True) if self.drop else h
        return self.out(h.mean(1))


@pytest.mark.parametrize("drop", [False, True], ids=["deterministic", "draws"])
def test_effects_at_an_embedding_layer_detect_noise_in_their_clean_pass(drop):
    torch.manual_seed(0)
    model, ids = Tokens(drop).eval(), torch.randint(1, 7, (N, 5), generator=torch.Generator().manual_seed(2))
    rows: list[int] = []
    model.register_forward_pre_hook(lambda _m, inp: rows.append(inp[0].shape[0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(model, ids, input_layer="emb", target=0, max_batch_size=4096)
    noted = any("The model draws random numbers in eval mode" in str(w.message) for w in caught)
    # no 8-sample pass either way: the clean pass shows the draw (then two passes of the probe compare outputs)
    assert noted == drop and DRAW_SAMPLES not in rows


def test_common_noise_still_gives_an_input_the_model_ignores_no_effect():
    model = _mlp(drop=True)
    with torch.no_grad():
        model.fc1.weight[:, 2] = 0.0  # input 2 is never read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        effects = input_effects(model, X, target=0, max_batch_size=7)
        mu, _ = interventional_expectations(model, X, values=torch.tensor([-1.0, 0.0, 2.0]), target=0, max_batch_size=7)
    assert torch.equal(effects[:, 2], torch.zeros(N, dtype=torch.float64)) and bool(effects[:, 0].abs().sum() > 0)
    assert torch.equal(mu[2], mu[2, :1].expand(3))  # the curve of the ignored input is flat: one noise per sample
