"""SobolAudit, sobol_indices and intrinsic_causal_contributions ran a model whose output for a row depends on the other
rows of its call without a word, where every other estimator refuses it (``check_samples_independent``): a forward that
standardises by the batch (``x - x.mean(0)``) or a BatchNorm traced (``torch.jit.trace``) in training mode gave
indices mixed over whichever drawn rows shared a chunk (the traced one 0.68/0.03/0.03 in chunks of 256 rows against
0.08/0.06/0.09 one row at a time). They now refuse such a model in the estimators' words: the traced one before the
evaluation (also where each row runs alone), the other from two of ``A``'s rows run alone against their values in the
evaluation. A model that treats its rows independently gives the indices it gave (y = x0 + 2 x1: S = 1/5, 4/5)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits.base import Probe
from lightning_causal.audits.sobol import SobolAudit
from lightning_causal.causal import AdditiveNoiseSCM, IndependentNormal
from lightning_causal.causal.sensitivity.icc import intrinsic_causal_contributions
from lightning_causal.causal.sensitivity.samplers import class_probability
from lightning_causal.causal.sensitivity.sobol import sobol_indices

INDEPENDENT = "Expected the model to treat samples independently"


class Centred(nn.Module):
    """``W (x - mean over the batch)``: each row's output depends on the rows of its call."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 2.0, 0.0], [0.0, 0.0, 1.0]]))
            self.lin.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x - x.mean(0))


def _traced_in_training() -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2)).train()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's own warnings
        return torch.jit.trace(net, torch.randn(16, 3)).eval()


def _probe() -> Probe:
    return Probe(torch.randn(64, 3, generator=torch.Generator().manual_seed(1)))


def _scm() -> AdditiveNoiseSCM:
    scm = AdditiveNoiseSCM(["a", "b", "c"], {})
    scm.fit(torch.randn(256, 3, generator=torch.Generator().manual_seed(2)))
    return scm


def test_a_model_that_centres_by_the_batch_is_refused_by_the_audit_and_both_analyses() -> None:
    model = Centred()
    with pytest.raises(ValueError, match=f"{INDEPENDENT}, but the outputs .* differ .*its forward depends on the batch"
                       r".*The Sobol' analysis \(sobol_indices\) runs rows of many samples in one batch"):
        SobolAudit(n=256, n_bootstrap=0, target=0, probability=False).run(model, _probe())
    with pytest.raises(ValueError, match=INDEPENDENT):
        sobol_indices(class_probability(model, 0, probability=False), IndependentNormal([0.0] * 3, [1.0] * 3), n=64,
                      n_bootstrap=0)
    with pytest.raises(ValueError, match=f"{INDEPENDENT}.*intrinsic_causal_contributions runs rows"):
        intrinsic_causal_contributions(lambda x: model(x.float())[:, 0], _scm(), n=64, shapley=False, n_bootstrap=0)


@pytest.mark.parametrize("max_batch_size", [None, 1])
def test_a_batchnorm_traced_in_training_is_refused_naming_it_also_one_row_at_a_time(max_batch_size: int | None) -> None:
    model = _traced_in_training()
    words = (rf"{INDEPENDENT}, but its BatchNorm layer\(s\) \['1'\] were traced \(torch.jit.trace\) in training mode"
             r".*trace the model in eval mode")
    with pytest.raises(ValueError, match=words):
        SobolAudit(n=256, n_bootstrap=0, target=0, probability=False).run(model, _probe(), max_batch_size=max_batch_size)
    with pytest.raises(ValueError, match=words):
        sobol_indices(model, IndependentNormal([0.0] * 3, [1.0] * 3), n=64, n_bootstrap=0, max_batch_size=max_batch_size)
    with pytest.raises(ValueError, match=words):
        intrinsic_causal_contributions(class_probability(model, 0), _scm(), n=64, shapley=False, n_bootstrap=0,
                                       max_batch_size=max_batch_size)


def test_a_model_of_independent_rows_gives_its_indices_and_leaves_the_rng() -> None:
    model = nn.Linear(2, 1, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
    torch.manual_seed(5)
    r = sobol_indices(model, IndependentNormal([0.0, 0.0], [1.0, 1.0]), n=4096, n_bootstrap=0)
    after = torch.rand(1)
    torch.manual_seed(5)
    assert torch.equal(after, torch.rand(1))
    assert torch.allclose(r.first, torch.tensor([0.2, 0.8], dtype=torch.float64), atol=0.02)  # Var x0 : Var 2 x1 = 1 : 4
    assert torch.allclose(r.total, torch.tensor([0.2, 0.8], dtype=torch.float64), atol=0.02)
