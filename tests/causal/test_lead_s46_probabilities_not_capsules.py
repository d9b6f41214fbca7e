"""Per-position probabilities are not told to take capsule lengths first (review of newuser123's 1578bb2f).

``output_fix`` names ``out.norm(dim=-1)`` first where every vector of a 3-D output has a norm below 1 (a capsule
network's squashed class capsules). A sequence model's per-position softmax or sigmoid probabilities ``[N, T, C]`` have
norms below 1 too, and for them the capsule advice (whose lengths would be explained) is the wrong first way: the
per-position advice comes first there; signed squashed vectors keep the capsule advice first.
"""
import torch

from lightning_causal.causal.engine.state import output_fix

_CAPSULES = "`output=lambda out: out.norm(dim=-1)`"


def _first_is_capsules(out: torch.Tensor) -> bool:
    text = output_fix(out)
    return text.index(_CAPSULES) < text.index("out.mean(1)")


def test_softmax_and_sigmoid_probabilities_per_position_keep_the_position_advice_first():
    torch.manual_seed(0)
    logits = torch.randn(4, 7, 5)
    assert not _first_is_capsules(logits.softmax(-1))
    assert not _first_is_capsules(torch.sigmoid(logits - 2.0) * 0.4)  # multi-label per position, norm < 1


def test_squashed_signed_capsules_keep_the_capsule_advice_first():
    torch.manual_seed(0)
    s = torch.randn(4, 10, 16)
    n2 = (s * s).sum(-1, keepdim=True)
    caps = n2 / (1 + n2) * s / n2.sqrt()  # the squash of Sabour et al. (2017): norms below 1
    assert bool((caps.norm(dim=-1) < 1).all())
    assert _first_is_capsules(caps)
    assert not _first_is_capsules(torch.randn(4, 10, 16) * 3)  # logits per position: norms above 1
