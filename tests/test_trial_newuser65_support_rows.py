"""A prototypical network given its episode's support set as a forward argument (newuser65 trial): with as many
queries as support rows (15 and 15), the support set is gathered by row with each query, as the docs say of a tensor
of N rows; two queries alone then read two support rows and give NaN prototypes for the classes they miss. The clean
probe's check took NaN for agreement (``same_outputs``: ``max |a - b|`` NaN, "not judged", and any difference beside a
NaN with it), so the model passed, and the first stacked pass was refused with advice on control flow and
``max_batch_size=1``, which reads one support row. Now NaN against a number differs, and the refusal names the
gathered argument and ``mark_whole``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward_args import mark_whole
from lightning_causal.causal.engine.sample_independence import same_outputs

NAN = float("nan")


class Prototypes(nn.Module):
    """3-way: prototypes the class means of the support set's embeddings, scores minus squared distances."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 5))

    def forward(self, x: torch.Tensor, support: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
        zs = self.enc(support)
        prototypes = torch.stack([zs[support_y == c].mean(0) for c in range(3)])
        return -torch.cdist(self.enc(x), prototypes) ** 2


def episode(queries: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.rand(queries, 4), torch.rand(6, 4), torch.arange(3).repeat_interleave(2)


def test_a_support_set_of_as_many_rows_as_queries_is_refused_naming_mark_whole():
    x, support, support_y = episode(6)
    with pytest.raises(ValueError, match="Expected the model to treat samples independently") as err:
        input_effects(Prototypes().eval(), x, torch.arange(4), additional_forward_args=(support, support_y))
    assert "(NaN where the batch gave numbers)" in str(err.value)
    assert "a forward argument of one row per sample is gathered by row" in str(err.value)
    assert "mark_whole((support, support_y), [0, 1])" in str(err.value)


def test_mark_whole_gives_the_hand_loop():
    x, support, support_y = episode(6)
    model = Prototypes().eval()
    effects = input_effects(model, x, torch.arange(4), target=0, additional_forward_args=mark_whole((support, support_y), [0, 1]))
    with torch.no_grad():
        clean = model(x, support, support_y)[:, 0]
        for j in range(4):
            zeroed = x.clone()
            zeroed[:, j] = 0
            torch.testing.assert_close(effects[:, j], clean - model(zeroed, support, support_y)[:, 0])


def test_other_sizes_pass_the_support_set_whole():
    x, support, support_y = episode(5)  # 5 queries, 6 support rows: passed whole by its shape
    model = Prototypes().eval()
    effects = input_effects(model, x, torch.arange(4), target=0, additional_forward_args=(support, support_y))
    with torch.no_grad():
        zeroed = x.clone()
        zeroed[:, 2] = 0
        torch.testing.assert_close(effects[:, 2], model(x, support, support_y)[:, 0] - model(zeroed, support, support_y)[:, 0])


def test_nan_against_a_number_differs_and_nan_hides_no_difference():
    assert same_outputs(torch.tensor([NAN, 2.0]), torch.tensor([1.0, 2.0]))[1] is False
    assert same_outputs(torch.tensor([1.0, 2.0]), torch.tensor([NAN, 2.0]))[1] is False
    assert same_outputs(torch.tensor([NAN, 1.0]), torch.tensor([NAN, 5.0])) == (4.0, False)  # before: (nan, True)
    assert same_outputs(torch.tensor([NAN, 1.0]), torch.tensor([NAN, 1.0])) == (0.0, True)  # NaN in both: not judged
    inf = float("inf")
    assert same_outputs(torch.tensor([inf, 1.0]), torch.tensor([inf, 1.0])) == (0.0, True)


def test_a_model_with_nan_in_both_passes_still_runs():
    class Nan(nn.Module):  # column 1 NaN for every sample, alone or not
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.lin(x)
            return torch.stack([out[:, 0], out[:, 1] * NAN], 1)

    model, x = Nan().eval(), torch.rand(5, 4)
    effects = input_effects(model, x, torch.arange(4), target=0)
    zeroed = x.clone()
    zeroed[:, 3] = 0
    with torch.no_grad():
        torch.testing.assert_close(effects[:, 3], model(x)[:, 0] - model(zeroed)[:, 0])
