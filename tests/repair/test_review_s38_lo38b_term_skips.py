"""Review of d692b056 (BackdoorSuppressionTerm(path="units") on suspect layers that skip or put rows second).

A suspect layer that did not run in a training step but runs in eval mode is left out of that step's penalty (LayerDrop).
A model that runs the layer in eval mode only (a branch on `self.training` written the wrong way round) so had a
causal-path penalty of 0 at every step, in silence, where it was refused before: it is warned of once the layer has
missed each of the first 10 training steps. And a module that says batch_first=False but returns its rows first (a
user's encoder returning its GRU's last hidden state [N, H]) was refused as sequence-first: it is paired as before."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger


def _term(layer: str, positions: int = 3) -> BackdoorSuppressionTerm:
    mask = torch.zeros(positions, 4).index_fill_(1, torch.tensor([0]), 1.0)
    return BackdoorSuppressionTerm(trigger=Trigger(mask, torch.full((positions, 4), 2.0), target=1),
                                   suspects={layer: [0, 2]}, path="units", path_weight=1.0, unlearn_weight=0.0,
                                   distill_weight=0.0, augment=None)


def _batch(n: int = 8, positions: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, positions, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


class Blocks(nn.Module):
    """A residual block run where ``runs(training)`` says: in eval mode only (a user's bug), or as a schedule says."""

    def __init__(self, runs) -> None:
        super().__init__()
        self.inp, self.block, self.head, self.runs = nn.Linear(12, 8), nn.Linear(8, 8), nn.Linear(8, 3), runs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x.flatten(1)))
        if self.runs(self.training):
            h = h + torch.relu(self.block(h))
        return self.head(h)


def _steps(model: nn.Module, term: BackdoorSuppressionTerm, count: int) -> list[str]:
    x, y = _batch()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(count):
            term.loss(model, x, y)
    return [str(w.message) for w in seen]


def test_a_layer_run_in_eval_mode_only_is_warned_of_once_its_penalty_was_0_for_10_steps():
    model, term = Blocks(lambda training: not training).train(), _term("block")
    assert _steps(model, term, 9) == [] and term.last_parts["path"] == 0.0  # left out, as a LayerDrop step
    said = _steps(model, term, 12)  # the 10th step, once
    assert len(said) == 1 and said[0].startswith("BackdoorSuppressionTerm: suspect layer 'block' did not run in any of "
                                                 "the 10 training steps"), said
    assert "eval mode only" in said[0] and "path='logit'" in said[0]
    fresh = Blocks(lambda training: not training).train()  # the count is per model
    assert len(_steps(fresh, term, 10)) == 1


def test_a_layer_skipped_at_random_after_it_ran_is_not_warned_of():
    schedule = iter([True] + [False] * 30)  # ran in the first training step, then skipped in 30
    model, term = Blocks(lambda training: not training or next(schedule)).train(), _term("block")
    assert _steps(model, term, 31) == []
    assert term.last_parts["path"] == 0.0


class Encoder(nn.Module):
    """A user's encoder taking the sequence in either layout and returning its GRU's last hidden state, [N, H]."""

    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.batch_first, self.rnn = batch_first, nn.GRU(4, 6, batch_first=batch_first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: [N, T, 4]
        return self.rnn(x if self.batch_first else x.transpose(0, 1))[1][-1]


class Classifier(nn.Module):
    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        self.enc, self.head = Encoder(batch_first), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.enc(x))


@pytest.mark.parametrize("positions", [3, 16])  # 16: as many time steps as the pass's rows
def test_a_module_that_says_batch_first_false_but_returns_rows_first_is_paired(positions):
    torch.manual_seed(0)
    first, second = Classifier(True), Classifier(False)
    second.load_state_dict(first.state_dict())
    x, y = _batch(8, positions)
    want = _term("enc", positions).loss(first, x, y)
    got = _term("enc", positions).loss(second, x, y)  # before: refused, "[16, 6] is sequence-first"
    assert float(want.detach()) > 0
    torch.testing.assert_close(got, want)
    with pytest.raises(ValueError, match=r"suspect layer 'enc.rnn'.*sequence-first \(the module says batch_first=False\)"):
        _term("enc.rnn", positions).loss(second, x, y)  # the GRU's own [T, N, H] output is still refused
