"""A capsule network's class scores are its class capsules' lengths (Sabour et al. 2017), each in [0, 1), rows not
summing to 1: the audits that take a softmax of them warned of independent probabilities naming sigmoid heads, detectors
and DUQ only, no capsules, and a capsule network's user did not see the warning was about its lengths (their softmax over
10 classes is at most e / (e + 9) = 0.23). The warning names them now, with the same ways out."""

import warnings

import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe


class CapsuleLengths(nn.Module):  # squashed class capsules [N, 4, 3], scored by their lengths
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 4 * 3)

    def forward(self, x):
        s = self.fc(x).view(len(x), 4, 3)
        n2 = (s * s).sum(-1, keepdim=True)
        return (n2 / (1 + n2) * s / torch.sqrt(n2 + 1e-8)).norm(dim=-1)


def _flip(x):
    out = x.clone()
    out[:, 0] = 1 - out[:, 0]
    return out


def test_the_softmax_warning_names_capsule_lengths_and_the_softmax_stays_flat():
    torch.manual_seed(0)
    model = CapsuleLengths().eval()
    x = torch.cat([torch.randint(0, 2, (16, 1)).float(), torch.randn(16, 5)], 1)
    lengths = model(x).detach()
    assert bool(((lengths >= 0) & (lengths < 1)).all())
    assert float(lengths.softmax(1).amax()) <= torch.e / (torch.e + 3)  # the bound the warning is about
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        FairnessAudit(_flip).run(model, Probe(x, torch.zeros(16, dtype=torch.long)))
    messages = [str(w.message) for w in seen if "independent probabilities" in str(w.message)]
    assert messages and "a capsule network's class capsules' lengths" in messages[0]
    assert "compare='output'" in messages[0]  # the way out, as before
