"""A ``BackdoorSuppressionTerm`` whose random generator has been drawn from pickles and copies with the generator as
its state (torch before 2.4 pickles no ``torch.Generator``), and the copy draws what the original draws next."""

import copy
import pickle

import torch

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm


def _term() -> BackdoorSuppressionTerm:
    mask = torch.zeros(1, 4, 4)
    mask[0, 0, 0] = 1.0
    term = BackdoorSuppressionTerm(Trigger(mask=mask, pattern=torch.ones(1, 4, 4), target=1))
    term._generator = torch.Generator().manual_seed(3)
    torch.rand(5, generator=term._generator)  # drawn from: a state that is not the seed's
    return term


def test_the_generator_is_pickled_as_its_state_and_continues_its_stream():
    term = _term()
    assert isinstance(term.__getstate__()["_generator"], torch.Tensor)
    for clone in (pickle.loads(pickle.dumps(term)), copy.deepcopy(term)):
        assert isinstance(clone._generator, torch.Generator)
        assert torch.equal(torch.rand(4, generator=clone._generator), torch.rand(4, generator=copy.deepcopy(term)._generator))
    expected = torch.rand(4, generator=pickle.loads(pickle.dumps(term))._generator)
    assert torch.equal(torch.rand(4, generator=term._generator), expected)
