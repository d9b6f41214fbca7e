"""A self-supervised encoder's validation batches of two augmented views, ``(view1, view2)`` (newuser65 trial): the
default unpacking reads them as ``(x, y)``, and ``CounterfactualAudit`` (with a linear probe's logits as ``output=``)
refused the second view as "real-valued [32, 1, 8, 8] (a regression, e.g. a forecast?)", which the user's encoder is
not. The refusal now says that labels of the inputs' own shape may be the other view, and the way out it names runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CounterfactualAudit, audit_model


def encoder_and_probe() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 16)).eval()
    return encoder, nn.Linear(16, 4).requires_grad_(False)


def views() -> DataLoader:
    torch.manual_seed(1)
    x = torch.rand(16, 1, 8, 8)
    return DataLoader(TensorDataset(x, (x + 0.05 * torch.randn_like(x)).clamp(0, 1)), 8)


def test_a_second_view_read_as_labels_is_named_with_the_way_out():
    encoder, probe = encoder_and_probe()
    with pytest.raises(ValueError, match=r"real-valued \[16, 1, 8, 8\]") as err:
        audit_model(encoder, [CounterfactualAudit(max_samples=4, output=probe)], views(), probe_size=16)
    assert "the other view of a self-supervised batch `(view1, view2)` read as `(x, y)`" in str(err.value)
    assert "unpack_batch=lambda batch: (batch[0], None, None)" in str(err.value)


def test_the_way_out_runs_and_flips_the_probe_class():
    encoder, probe = encoder_and_probe()
    (result,) = audit_model(encoder, [CounterfactualAudit(max_samples=4, output=probe, towards="runner_up")], views(),
                            probe_size=16, unpack_batch=lambda batch: (batch[0], None, None))
    assert result.scalars["explained"] == 4
    assert result.scalars["success_rate"] > 0


def test_a_regression_of_other_labels_is_not_told_of_views():
    encoder, probe = encoder_and_probe()
    x = torch.rand(16, 1, 8, 8)
    loader = DataLoader(TensorDataset(x, torch.rand(16, 4)), 8)
    with pytest.raises(ValueError, match="real-valued") as err:
        audit_model(encoder, [CounterfactualAudit(max_samples=4, output=probe)], loader, probe_size=16)
    assert "view" not in str(err.value)
