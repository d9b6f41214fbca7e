"""A time-first CTC model (``forward(x, lengths)``, log-probabilities ``[T, N, C]``) explained by a ``logsumexp`` over
every frame: the "effects shrink with the padding" warning is given once per audit, with the lengths/time-first way
out, and that way out, followed, gives the same effects at two paddings."""
import warnings

import torch

from lightning_causal import InputEffectAudit, audit_model

F_, C, N, T = 3, 4, 6, 10


class _Ctc(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru, self.head = torch.nn.GRU(F_, 8), torch.nn.Linear(8, C)

    def forward(self, x, lengths):  # x [N, T, F] -> [T, N, C]
        packed = torch.nn.utils.rnn.pack_padded_sequence(x.transpose(0, 1), lengths, enforce_sorted=False)
        o, _ = torch.nn.utils.rnn.pad_packed_sequence(self.gru(packed)[0], total_length=x.shape[1])
        return self.head(o).log_softmax(-1)


class _RealFrames(torch.nn.Module):  # the warning's time-first logsumexp, verbatim
    def __init__(self, m: torch.nn.Module) -> None:
        super().__init__()
        self.m = m

    def forward(self, x, lengths):
        out = self.m(x, lengths)
        real = torch.arange(out.shape[0], device=lengths.device) < lengths[:, None]
        return out.masked_fill(~real.T[..., None], float("-inf")).logsumexp(0)


def _run(model, output, padded: int, base: torch.Tensor, lengths: torch.Tensor):
    x = torch.zeros(N, padded, F_)
    x[:, :T] = base
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = audit_model(model, [InputEffectAudit(output=output)], torch.utils.data.TensorDataset(x, lengths),
                             probe_size=N, unpack_batch=lambda b: (b[0], None, {"lengths": b[1]}))[0]
    return result.scalars, [str(w.message) for w in caught if "shrink with the padding" in str(w.message)]


def test_ctc_logsumexp_warned_once_and_the_way_out_is_padding_free():
    from lightning_causal.causal.engine.padded_reads import LENGTHS_MIXED_FIX

    torch.manual_seed(0)
    model = _Ctc().eval()
    lengths = torch.tensor([10, 7, 5, 8, 6, 9])
    base = torch.randn(N, T, F_) * (torch.arange(T)[None, :, None] < lengths[:, None, None])
    _, said = _run(model, lambda o: o.logsumexp(0)[:, 2:3], T, base, lengths)
    assert len(said) == 1 and LENGTHS_MIXED_FIX in said[0]
    assert "choosing. With `lengths`" in said[0]
    a, said_a = _run(_RealFrames(model), lambda o: o[:, 2:3], T, base, lengths)
    b, said_b = _run(_RealFrames(model), lambda o: o[:, 2:3], T + 6, base, lengths)
    assert not said_a and not said_b
    for key in ("mean_abs_effect", "max_abs_effect"):
        assert abs(a[key] - b[key]) <= 1e-6 * max(1.0, abs(a[key])) and a[key] > 0
