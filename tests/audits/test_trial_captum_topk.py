"""CaptumBaseline's top-k overlap on padded token inputs, checked by hand (trial: captum)."""

import warnings

import torch
from torch import nn

from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline


class _Bag(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.out = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.out(torch.tanh(self.emb(ids) * attention_mask.unsqueeze(-1)).sum(1))


def test_topk_of_short_padded_sentences_is_not_one_by_construction():
    # Sentences of 2-4 real tokens compared at top_k=5: k was capped at the number of real tokens,
    # so the top-k held all of them and the overlap was 1.0 whatever the rankings (here ρ = 0.3).
    torch.manual_seed(0)
    model = _Bag()
    ids = torch.randint(3, 20, (4, 10))
    am = torch.zeros(4, 10, dtype=torch.long)
    for i, length in enumerate([3, 4, 2, 3]):
        am[i, :length] = 1
    ids = ids * am
    audit = CaptumBaseline(methods=("LayerGradientXActivation",), input_layer="emb", baseline=0, top_k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit.run(model, Probe(ids, additional_forward_args={"attention_mask": am}))
    causal, other = result.maps["causal"].abs(), result.maps["LayerGradientXActivation"].abs()  # one group per position
    expected = []
    for n, length in enumerate([3, 4, 2, 3]):
        k = max(1, min(5, length - 1))
        top = [set(s[n, :length].argsort(descending=True, stable=True)[:k].tolist()) for s in (causal, other)]
        expected.append(len(top[0] & top[1]) / k)
    assert abs(result.scalars["compare/LayerGradientXActivation/topk"] - sum(expected) / 4) < 1e-6
    assert result.scalars["compare/LayerGradientXActivation/topk"] < 1.0


class _ReluInputs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.relu(x))


def test_topk_leaves_out_samples_whose_explanations_are_constant():
    # Samples with every input negative: every explanation is 0 (no effect, no gradient through the
    # ReLU). Their Spearman is NaN (documented: undefined for a constant explanation), but the top-k
    # of two all-zero maps (ties broken by group id) overlapped 1.0 and raised the mean.
    torch.manual_seed(0)
    x = -torch.rand(6, 5)
    x[:3] = torch.rand(3, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CaptumBaseline(methods=("Saliency",), top_k=2).run(_ReluInputs(), Probe(x))
    causal, other = result.maps["causal"].abs(), result.maps["Saliency"].abs()
    assert (causal[3:] == 0).all() and (other[3:] == 0).all()
    expected = [len(set(causal[n].topk(2).indices.tolist()) & set(other[n].topk(2).indices.tolist())) / 2 for n in range(3)]
    assert abs(result.scalars["compare/Saliency/topk"] - sum(expected) / 3) < 1e-6
