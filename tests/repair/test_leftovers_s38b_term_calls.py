"""BackdoorSuppressionTerm(path="units") on suspect layers that run several times a pass, skip, or put rows second.

It copied every call's whole output of every suspect layer at each training step (a GRU cell unrolled over 200 steps:
200 copies): each call is now reduced to its shift as it runs, the penalty and its gradient those of before. A
suspect layer the model skips at random in training (LayerDrop) failed fine-tuning at the first step that skipped it,
after capture's warning about the same module: such a layer (one that runs in eval mode) is left out of the steps
that skip it; one that never runs is refused alone, in the term's words. A sequence-first output (a GRU with
batch_first=False) was said to return its time steps as rows, and where the time steps happened to number the rows,
paired them in silence: it is refused naming the axes."""

import gc
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.engine.interventions import capture
from lightning_causal.repair.backdoor_parts import scaled_shift
from tests.causal.test_leftovers_s38b_suspect_calls import Unrolled, _kept_bytes


def _term(layer: str, units=(0, 2), positions: int = 3, **kw) -> BackdoorSuppressionTerm:
    mask = torch.zeros(positions, 4).index_fill_(1, torch.tensor([0]), 1.0)
    t = Trigger(mask, torch.full((positions, 4), 2.0), target=1)
    options = {"path": "units", "path_weight": 1.0, "unlearn_weight": 0.0, "distill_weight": 0.0, "augment": None, **kw}
    return BackdoorSuppressionTerm(trigger=t, suspects={layer: list(units)}, **options)


def _batch(n: int = 8, positions: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, positions, 4, generator=g), torch.randint(0, 3, (n,), generator=g)


def _old_path(model: nn.Module, term: BackdoorSuppressionTerm, x: torch.Tensor, layer: str) -> torch.Tensor:
    """The penalty as the term computed it before: every call's output copied, each call's shift stacked."""
    calls = []
    with capture(model, [layer], detach=False, keep=lambda _, h: calls.append(h.clone()) or h, warn_repeats=False):
        model(torch.cat([x, term.stamp(x)]))
    m = x.shape[0]
    u = term.suspects[layer]
    shifts = [scaled_shift(h[m:, u], h[:m, u].detach()) for h in calls]
    return sum(shifts[1:], shifts[0]) / len(shifts)  # added in order, as the term adds them


@pytest.mark.parametrize("steps", [1, 5, 12])
def test_the_penalty_and_its_gradient_are_those_of_every_call_copied(steps):
    torch.manual_seed(0)
    model, (x, y) = Unrolled(steps), _batch()
    term = _term("cell")
    new = term.loss(model, x, y)
    grad_new = torch.autograd.grad(new, list(model.cell.parameters()))
    old = _old_path(model, term, x, "cell")
    grad_old = torch.autograd.grad(old, list(model.cell.parameters()))
    if steps < 8:  # a sum of fewer than 8 calls is added in order either way: the very floats
        assert torch.equal(new, old) and all(torch.equal(a, b) for a, b in zip(grad_new, grad_old))
    torch.testing.assert_close(new, old, rtol=1e-6, atol=1e-8)
    for a, b in zip(grad_new, grad_old):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)


def test_the_memory_kept_grows_with_the_calls_by_the_suspect_units_shift_alone():
    """Autograd keeps what the model's own backward needs at each call, with or without the term; the term's penalty
    needs each call's shift of the suspect units (2 of 32 here) for its gradient, no copy of the call's output."""
    torch.manual_seed(0)
    x, y = _batch(64)
    extra = {}
    for steps in (2, 50):
        model = Unrolled(steps, hidden=32)
        units = _kept_bytes(model, lambda m=model: _term("cell").loss(m, x, y))
        logit = _kept_bytes(model, lambda m=model: _term("cell", path="logit").loss(m, x, y))  # the same pass, no suspect
        extra[steps] = units - logit
    one_call = 2 * x.shape[0] * 32 * 4  # a copy of one call's output on the clean and the stamped rows, float32
    shift = x.shape[0] * 2 * 4  # one call's shift of the 2 suspect units on the stamped rows (and their index, 16 bytes,
    # and the call's scale, one float: scaled_shift)
    assert extra[50] - extra[2] <= 48 * (shift + 16 + 4) < 48 * one_call / 16, extra  # before: 48 more copies of one_call


class LayerDrop(nn.Module):
    """Residual blocks, each skipped with probability ``p`` in training (LayerDrop, Fan et al. 2019)."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        self.inp, self.head, self.p = nn.Linear(12, 8), nn.Linear(8, 3), p
        self.blocks = nn.ModuleList([nn.Linear(8, 8) for _ in range(2)])
        self.unused = nn.Linear(8, 8)  # held, never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.inp(x.flatten(1)))
        for block in self.blocks:
            if self.training and torch.rand(()) < self.p:
                continue
            h = h + torch.relu(block(h))
        return self.head(h)


def test_a_layer_skipped_at_random_in_training_is_left_out_of_the_steps_that_skip_it():
    torch.manual_seed(0)
    model, (x, y) = LayerDrop(p=1.0), _batch()  # every block skipped in training: the penalty has no layer
    term = _term("blocks.0")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(term.loss(model, x, y).detach()) == 0.0 and term.last_parts["path"] == 0.0
    model.p = 0.5
    both = _term("blocks.0")
    both.suspects = {"blocks.0": [0, 2], "blocks.1": [1]}
    torch.manual_seed(1)
    assert [bool(torch.rand(()) < 0.5) for _ in range(2)] == [False, True]  # seed 1: blocks.0 runs, blocks.1 skipped
    torch.manual_seed(1)
    skipped = both.loss(model, x, y)
    after = torch.rand(())  # the eval-mode check of blocks.1 left the random stream where the model's draws put it
    torch.manual_seed(1)
    alone = _term("blocks.0").loss(model, x, y)  # the same draws, one suspect
    assert float(alone.detach()) > 0 and torch.equal(skipped, alone) and torch.equal(after, torch.rand(()))


def test_a_layer_that_never_runs_is_refused_alone_in_the_terms_words():
    model, (x, y) = LayerDrop(p=0.0), _batch()
    for training in (True, False):
        model.train(training)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # before: capture's "did not run" warning, then the term's error
            with pytest.raises(ValueError, match=r"suspect layer 'unused' to run.*did not run in this forward pass"
                               + (r", nor in eval mode \(a block that LayerDrop" if training else r" \(the model in eval mode\)")
                               + r".*path='logit'"):
                _term("unused").loss(model, x, y)
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == 0


class SequenceFirst(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = nn.GRU(4, 6), nn.Linear(6, 3)  # batch_first=False: [T, N, H]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(x.transpose(0, 1))[0][-1])


@pytest.mark.parametrize("positions", [3, 16])  # 16: as many time steps as the pass's rows, paired in silence before
def test_a_sequence_first_output_is_refused_naming_its_axes(positions):
    torch.manual_seed(0)
    model, (x, y) = SequenceFirst(), _batch(8, positions)
    with pytest.raises(ValueError, match=rf"suspect layer 'gru'.*output of shape \[{positions}, 16, 6\] is sequence-first "
                                         r"\(the module says batch_first=False\).*second the rows.*batch_first=True"):
        _term("gru", positions=positions).loss(model, x, y)
    if positions != 16:  # a module of its own, saying nothing of batch_first, that returns [T, N, H]: told by its axes
        with pytest.raises(ValueError, match=r"suspect layer 'states'.*sequence-first \(its second axis has the 16 rows\)"):
            _term("states", positions=positions).loss(_WrappedStates(), x, y)
    gc.collect()


class _States(nn.Module):
    """A GRU's states ``[T, N, H]`` returned by a module that has no ``batch_first`` of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gru(x)[0]


class _WrappedStates(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.states, self.head = _States(), nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.states(x.transpose(0, 1))[-1])


class _Encoder(nn.Module):
    """nn.TransformerEncoderLayer / nn.TransformerEncoder at their default batch_first=False: ``[T, N, E]``, the flag
    held on their attention, not on themselves."""

    def __init__(self, stacked: bool, batch_first: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=batch_first)
        self.inp, self.head, self.batch_first_ = nn.Linear(4, 8), nn.Linear(8, 3), batch_first
        self.enc = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False) if stacked else layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        return self.head(self.enc(h).mean(1) if self.batch_first_ else self.enc(h.transpose(0, 1)).mean(0))


@pytest.mark.parametrize("stacked", [False, True])
def test_a_transformer_layer_at_its_default_layout_is_refused_where_its_steps_equal_the_rows(stacked):
    """Final read of d692b056/0779de66: the layer says batch_first on its self_attn only, so with as many positions as
    the pass's rows (16) its [T, N, E] output was paired position by position in silence (penalty 1.43)."""
    x, y = _batch(8, 16)
    with pytest.raises(ValueError, match=r"suspect layer 'enc'.*sequence-first \(the module says batch_first=False\)"):
        _term("enc", positions=16).loss(_Encoder(stacked).train(), x, y)
    assert bool(torch.isfinite(_term("enc", positions=16).loss(_Encoder(stacked, batch_first=True).train(), x, y)))
