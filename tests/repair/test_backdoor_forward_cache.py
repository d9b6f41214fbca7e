"""BackdoorSuppressionTerm builds the Forward of each model once (a build walks every module), not 3-4 times per
step; the term still pickles and deep-copies (DDP spawn, checkpoints), and a new model gets its own."""

import copy
import pickle

import torch
from torch import nn

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm


def test_one_forward_per_model_and_the_term_still_copies():
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    trigger = Trigger(torch.tensor([[[1.0, 0.0], [0.0, 0.0]]]), torch.ones(1, 2, 2), target=1)
    term = BackdoorSuppressionTerm(trigger, augment=None)
    term.setup(model)
    x, y = torch.rand(8, 1, 2, 2), torch.zeros(8, dtype=torch.long)
    term.loss(model, x, y)
    first = term._forward(model)
    term.loss(model, x, y)
    assert term._forward(model) is first and term._forward(term.reference) is not first
    other = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    assert term._forward(other).model is other
    for clone in (pickle.loads(pickle.dumps(term)), copy.deepcopy(term)):
        assert torch.isclose(clone.loss(model, x, y), term.loss(model, x, y))
