"""The padding of an input was not read where a forward argument beside it is a weight of 3 or more dimensions that a
probe cut to as many rows as the weight passes whole: ``ablation._argument_tensors`` decided by the row count alone,
took the weight ``[3, T, F]`` for a sequence the ``lengths`` may describe (3-D before the 2-D input) and
``padding_positions`` gave ``None``, so InputEffectAudit averaged the padded steps' zero effects in (step 3: 4.0
where its one real sample gives 12.0). It reads the "pass whole" marks (``forward_args.whole_positions``), as
``ForwardArgs`` does."""

import warnings

import torch
from torch import nn

from lightning_causal import audit_model
from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.engine.forward_args import mark_whole


class Masked(nn.Module):
    """``x [N, T]`` summed over its real steps (``lengths``) through a weight ``w [K, T, C]`` of ones: each output is
    ``K * sum of the real steps``."""

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        real = torch.arange(x.shape[1])[None] < lengths[:, None]
        return torch.einsum("nt,ktc->nc", x * real, w)


X = torch.arange(1.0, 13.0).view(3, 4)
LENGTHS = torch.tensor([4, 2, 1])
PAD = torch.tensor([[False, False, False, False], [False, False, True, True], [False, True, True, True]])


def test_a_weight_marked_whole_is_not_taken_for_the_sequence_the_lengths_describe() -> None:
    w = torch.ones(3, 4, 2)
    assert torch.equal(padding_positions(X, {"lengths": LENGTHS, "w": torch.ones(5, 4, 2)}, model=Masked()), PAD)
    marked = mark_whole({"lengths": LENGTHS, "w": w}, [1])
    assert torch.equal(padding_positions(X, marked, model=Masked()), PAD)  # before: None
    assert padding_positions(X, {"lengths": LENGTHS, "w": w}, model=Masked()) is None  # unmarked: a sequence of 3 rows


def test_input_effects_of_a_probe_cut_to_the_weights_rows_average_the_real_steps_only() -> None:
    x = torch.cat([X, torch.ones(1, 4)])
    probe = Probe(x, additional_forward_args={"lengths": torch.tensor([4, 2, 1, 3]), "w": torch.ones(3, 4, 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = audit_model(Masked(), [InputEffectAudit(ace_values=None)], probe, probe_size=3)[0]
    # effect of step t in sample n: 3 * x[n, t] where real; the mean over the samples where step t is real
    assert torch.equal(result.vectors["mean_abs_effect"], torch.tensor([15.0, 12.0, 9.0, 12.0]))  # before: [15, 8, 3, 4]
