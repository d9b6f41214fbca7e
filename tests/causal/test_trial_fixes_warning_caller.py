"""Warnings whose fixed stacklevel pointed into the package instead of the user's line (Neural
Cleanse's mask_shape warning, CounterfactualFairnessTerm's label warnings, and others reached at
various depths): they now point at the first frame outside lightning_causal."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.repair.fairness import CounterfactualFairnessTerm


def _caught(fn, words: str) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        fn()
    found = [m for m in w if words in str(m.message)]
    assert found, f"no warning with {words!r}: {[str(m.message)[:80] for m in w]}"
    return found


class _Seq(nn.Module):  # a features-last sequence model [N, T, F]
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).mean(1)


def test_neural_cleanse_mask_shape_warning_points_at_the_caller():
    torch.manual_seed(0)
    x = torch.rand(8, 12, 3)
    found = _caught(lambda: neural_cleanse(_Seq(), x, num_classes=2, steps=1, batch_size=4), "shared along dimension 1")
    assert all(m.filename == __file__ for m in found)


def test_fairness_term_label_warnings_point_at_the_caller():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(0, 2, (8, 1), generator=g).float(), torch.randn(8, 2, generator=g)], 1)
    y = 10 + 3 * torch.randn(8, generator=g)  # a regression target
    found = _caught(lambda: CounterfactualFairnessTerm(AttributeFlip(0)).loss(nn.Linear(3, 1), x, y), "regression target")
    assert [m.filename for m in found] == [__file__]
    multi = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]] * 4)
    found = _caught(lambda: CounterfactualFairnessTerm(AttributeFlip(0)).loss(nn.Linear(3, 3), x, multi), "multi-hot")
    assert [m.filename for m in found] == [__file__]


def test_an_audits_warning_points_at_the_caller():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([nn.functional.one_hot(torch.randint(0, 3, (32,), generator=g), 3).float(), torch.randn(32, 1, generator=g)], 1)
    found = _caught(lambda: InputEffectAudit(ace_values=None).run(nn.Linear(4, 2), Probe(x)), "one-hot block")
    assert [m.filename for m in found] == [__file__]


def test_the_layer_maps_few_rows_warning_points_at_the_caller():
    from lightning_causal.causal.structure.layer_map import layer_causal_map

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2))
    found = _caught(lambda: layer_causal_map(model, torch.randn(1, 2), torch.tensor([[0, 1]]), ["0", "2"]), "distinct intervention row")
    assert [m.filename for m in found] == [__file__]


class _Noisy(nn.Module):  # draws noise in eval mode (dropout with training=True)
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.dropout(x, 0.5, training=True))


def test_the_noise_warning_points_at_the_caller_from_an_audit():
    torch.manual_seed(0)
    x = torch.randn(8, 4)
    found = _caught(lambda: InputEffectAudit(ace_values=None).run(_Noisy(), Probe(x)), "draws random numbers")
    assert found and all(m.filename == __file__ for m in found)
