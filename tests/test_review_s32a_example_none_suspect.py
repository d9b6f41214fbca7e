"""examples/backdoor_digits.py's ``evaluate`` read ``res.anomaly_index[res.most_suspect]`` as a number, and
``ReversedTriggers.most_suspect`` is ``None`` since 2a1b2071 where every class is left out of Neural Cleanse's
comparison (one class predicted for every input, the others ruled out with -inf): ``anomaly_index[None]`` is the
whole [10] vector and ``float()`` of it stopped the example with 'only one element tensors can be converted'.
The example now reports no class there, its index and concentration NaN, and its table says why."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch

from lightning_causal.causal import Trigger
from lightning_causal.causal.backdoor.flagging import ReversedTriggers
from lightning_causal.datasets import patch_trigger
from lightning_causal.models import DigitsCNN

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "backdoor_digits.py"


def _example():
    spec = importlib.util.spec_from_file_location("backdoor_digits_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _detection(ruled_out: list[int]) -> ReversedTriggers:
    triggers = [Trigger(torch.zeros(1, 8, 8), 0.0, c) for c in range(10)]
    norms = torch.arange(1.0, 11.0)
    return ReversedTriggers(triggers, torch.zeros(10), norms, torch.ones(10), torch.ones(10), concentration=torch.ones(10),
                            max_ratio=0.75, unattacked=[0], ruled_out=ruled_out)


def test_the_example_reports_no_suspect_where_every_class_is_left_out() -> None:
    example, model = _example(), DigitsCNN()
    x, y = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(12) % 10
    trigger = patch_trigger((1, 8, 8), target=1)
    row = example.evaluate(model, x, y, trigger, 1, 0, res=_detection(list(range(1, 10))))
    assert row["top"] is None and math.isnan(row["index"]) and math.isnan(row["kappa"])
    assert example._cells(row)[3] == "none (every class left out)"
    compared = example.evaluate(model, x, y, trigger, 1, 0, res=_detection(list(range(1, 8))))  # classes 8, 9 compared
    assert compared["top"] == 8 and example._cells(compared)[3].startswith("8 (")  # norm 9 < 10: the lower ratio
