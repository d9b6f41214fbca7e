"""At ``max_batch_size=1`` the layer map refused a model whose rows are independent but whose loop
length follows the batch (an early exit running a block until every row halts, halted rows kept by ``torch.where``; a
``GRUCell`` over ``lengths.max()`` steps, masked): a sample alone calls the block fewer times than the probe's pass.
Such a difference is refused only where the sample's output alone is not its row of the probe's pass (the branch on a
batch statistic of ``test_leftovers_s43a_alone_calls``, still refused)."""
import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map


class _EarlyExit(nn.Module):
    """A shared block applied until every row halts after its own 1 to 3 steps, halted rows frozen."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.block, self.head = nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        h = torch.tanh(self.inp(x))
        steps = 1 + (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
        k = 0
        while bool((steps > k).any()):
            h = torch.where((steps > k)[:, None], torch.tanh(self.block(h)), h)
            k += 1
        return self.head(h)


class _Cell(nn.Module):
    """A GRUCell run over the batch's longest length, each row's state frozen past its own length."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.cell, self.head = nn.Linear(3, 4), nn.GRUCell(4, 4), nn.Linear(4, 2)

    def forward(self, x, lengths):
        e = torch.tanh(self.inp(x))
        h = e.new_zeros(len(x), 4)
        for t in range(int(lengths.max())):
            h = torch.where((lengths > t)[:, None], self.cell(e[:, t], h), h)
        return self.head(h)


def _x():
    return torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_an_early_exit_is_answered_one_sample_at_a_time():
    model, x = _EarlyExit().double().eval(), _x()
    torch.testing.assert_close(torch.cat([model(x[i:i + 1]) for i in range(8)]), model(x))
    with pytest.warns(UserWarning, match="several times"):
        got = layer_causal_map(model, x, layers=["inp", "block"], target=1, max_batch_size=1)
    # each sample's own last call of the block (the one its output comes from), as at 1c1d0b7b, which did not count
    torch.testing.assert_close(got.response.flatten(), torch.tensor([0.4241, 0.4551], dtype=got.response.dtype),
                               rtol=0, atol=1e-4)


def test_a_cell_looped_over_the_longest_length_is_answered_one_sample_at_a_time():
    x = torch.randn(6, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([5, 2, 4, 3, 5, 1])
    x = x * (torch.arange(5)[None] < lengths[:, None])[..., None]
    model = _Cell().double().eval()
    with pytest.warns(UserWarning, match="several times"):
        lm = layer_causal_map(model, x, layers=["inp", "cell"], target=1, max_batch_size=1,
                              additional_forward_args={"lengths": lengths})
    assert torch.isfinite(lm.response).all()


def test_each_sample_alone_reads_the_cell_call_its_output_comes_from():
    from lightning_causal.causal.engine.forward import Forward
    from lightning_causal.causal.structure.layer_activations import activations_alone

    x = torch.randn(6, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    lengths = torch.tensor([5, 2, 4, 3, 5, 1])
    model = _Cell().double().eval()
    kept = []
    hook = model.head.register_forward_hook(lambda _m, args, _o: kept.append(args[0]))
    with torch.no_grad():
        whole = model(x, lengths)
    hook.remove()
    forward = Forward(model, additional_forward_args={"lengths": lengths}, num_samples=6)
    with torch.no_grad():
        out, acts = activations_alone(forward, (x,), ["cell"], calls={"cell": 5}, what="the layer map", whole=whole)
    torch.testing.assert_close(acts["cell"], kept[0])  # the state each row's head reads: its last real step's
    torch.testing.assert_close(out, whole)
