"""Seeds of the randomised estimators and audits (newuser31 trial): sobol_indices, ICC, attribute and
SobolAudit/CaptumBaseline took a negative seed (an alias of a positive one: torch wraps it) while
causal_graph and layer_causal_map refused it, and a seed past 2**64 - 1 failed deep in torch with
'Overflow when unpacking long long', naming no argument (the audits only when they ran, mid-fit).
Every seed is now an int in [0, 2**64 - 1], refused at the call or the audit's construction."""

import pytest
import torch
from torch import nn

from lightning_causal import (
    BackdoorAudit,
    CaptumBaseline,
    CausalGraphAudit,
    LayerMapAudit,
    SobolAudit,
)
from lightning_causal import causal as C
from lightning_causal.baselines import attribute, metrics
from lightning_causal.baselines.attribution_context import seeded_rng
from lightning_causal.causal.scm import MLPFunction
from lightning_causal.datasets import blended_trigger, make_synthetic_fairness, make_synthetic_text
from lightning_causal.models import fit_classifier, load_digits_tensors

MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes [0, MAX_SEED] (and negatives, aliased)
NET = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 2)).eval()
X = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
SCM = C.AdditiveNoiseSCM(["a", "b"], {"b": ["a"]}).fit(X)

CALLS = {
    "sobol_indices": lambda s: C.sobol_indices(lambda x: x[:, 0] * x[:, 1], C.UniformCube(2), n=16, n_bootstrap=0, seed=s),
    "intrinsic_causal_contributions": lambda s: C.intrinsic_causal_contributions(lambda x: x[:, 1], SCM, n=16, n_bootstrap=0, seed=s),
    "attribute": lambda s: attribute(NET, X, "GradientShap", target=0, generator=s),
    "layer_causal_map": lambda s: C.layer_causal_map(NET, X, layers=["0"], seed=s),
    "SobolAudit": lambda s: SobolAudit(seed=s),
    "CaptumBaseline": lambda s: CaptumBaseline(seed=s),
    "CausalGraphAudit": lambda s: CausalGraphAudit(["0"], seed=s),
    "LayerMapAudit": lambda s: LayerMapAudit(seed=s),
    # review of the change: the other seeds of the package take the same check (negatives were aliased, 2**64 overflowed in torch)
    "graph_stability": lambda s: C.graph_stability(NET, X, ["0"], seed=s),
    "MLPFunction": lambda s: MLPFunction(seed=s),
    "BackdoorAudit": lambda s: BackdoorAudit(seed=s),
    "stability": lambda s: metrics.stability(lambda x: x, X, 0.1, seed=s),
    "token_stability": lambda s: metrics.token_stability(lambda x: x.float(), torch.ones(2, 3, dtype=torch.long),
                                                         torch.ones(2, 3, dtype=torch.bool), seed=s),
    "sensitivity": lambda s: metrics.sensitivity(lambda x, target: x, X, torch.zeros(6, dtype=torch.long), 0.1, seed=s),
    "infidelity": lambda s: metrics.infidelity(NET, X, torch.ones(6, 2), torch.tensor([[0, 1]]), target=0, seed=s),
    "seeded_rng": lambda s: seeded_rng(s).__enter__(),
    "make_synthetic_fairness": lambda s: make_synthetic_fairness(8, seed=s),
    "make_synthetic_text": lambda s: make_synthetic_text(8, seed=s),
    "blended_trigger": lambda s: blended_trigger((1, 2, 2), seed=s),
    "fit_classifier": lambda s: fit_classifier(nn.Linear(2, 2), X, torch.arange(6) % 2, epochs=1, seed=s),
    "load_digits_tensors": lambda s: load_digits_tensors(seed=s),
}


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1])
@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_seed_outside_torchs_range_is_refused_naming_the_argument(name, seed):
    with pytest.raises(ValueError, match=r"Expected argument `(seed|generator)` to be an int in \[0, 18446744073709551615\]"):
        CALLS[name](seed)


@pytest.mark.filterwarnings("ignore")
def test_the_largest_seed_is_taken_and_differs_from_seed_zero():
    a, b = CALLS["sobol_indices"](MAX_SEED), CALLS["sobol_indices"](0)
    assert not torch.equal(a.first, b.first)
    assert not torch.equal(CALLS["attribute"](MAX_SEED), CALLS["attribute"](0))
