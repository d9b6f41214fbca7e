"""Trial "fixes3": a new user's CNN whose convolutions and linear layer use
``torch.nn.utils.parametrizations.weight_norm`` / ``spectral_norm``, and one run in ``torch.channels_last``,
on digits with ``CausalAuditCallback`` in a ``Trainer(accelerator="cpu", max_epochs=1,
logger=TensorBoardLogger(tmp))``. Nothing broke: the audits at the end of the fit give the numbers the
same audits give on a plain contiguous CNN with the model's effective weights (``layer.weight`` as the
parametrization computes it), the default layer map reads the three layers (not the parametrizations),
and no hook is left. These tests keep it so."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

from lightning_causal import (
    CausalAuditCallback,
    InputEffectAudit,
    LayerMapAudit,
    UnitImportanceAudit,
)
from lightning_causal.models import LightningClassifier
from tests.helpers.lightning import loaders, trainer
from tests.helpers.models import all_hook_counts


class Net(nn.Module):
    """conv(1 -> 4) -> relu -> conv(4 -> 8) -> relu -> maxpool -> linear(128 -> 10), optionally parametrized
    (``"weight_norm"``, ``"spectral_norm"``) or run channels last (``"channels_last"``: the input converted in forward)."""

    def __init__(self, kind: str | None = None) -> None:
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1), nn.Linear(128, 10)
        wrap = {"weight_norm": weight_norm, "spectral_norm": spectral_norm}.get(kind)
        if wrap is not None:
            self.conv1, self.conv2, self.fc = wrap(self.conv1), wrap(self.conv2), wrap(self.fc)
        self.channels_last = kind == "channels_last"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        h = nn.functional.max_pool2d(torch.relu(self.conv2(torch.relu(self.conv1(x)))), 2)
        return self.fc(h.flatten(1))


def plain_copy(model: Net) -> Net:
    """A plain contiguous Net with ``model``'s effective weights (computed by its parametrizations in eval mode)."""
    plain = Net().eval()
    with torch.no_grad():
        for name in ("conv1", "conv2", "fc"):
            src, dst = getattr(model, name), getattr(plain, name)
            dst.weight.copy_(src.weight.contiguous())
            dst.bias.copy_(src.bias)
    return plain


@pytest.mark.parametrize("kind", ["weight_norm", "spectral_norm", "channels_last"])
def test_the_audits_of_the_fit_match_those_of_the_plain_cnn(kind, tmp_path):
    torch.manual_seed(0)
    net = Net(kind)
    if kind == "channels_last":
        net = net.to(memory_format=torch.channels_last)
    audits = [InputEffectAudit(patch_size=2, ace_values=None), UnitImportanceAudit(["model.conv1", "model.conv2"]), LayerMapAudit(patch_size=4)]
    cb = CausalAuditCallback(audits, probe_size=16)
    train, val = loaders(batch_size=32)
    trainer(tmp_path, max_epochs=1, logger=TensorBoardLogger(tmp_path), callbacks=[cb]).fit(LightningClassifier(net, lr=0.05), train, val)
    assert cb.audited_epochs == [0] and all_hook_counts(net) == 0
    net.eval()  # the audit ran last: the weights (and spectral_norm's u, v) are those it saw
    plain = LightningClassifier(plain_copy(net))
    for audit in audits:
        ours, reference = cb.last_results[audit.name], audit.run(plain, cb.probe)
        assert set(ours.vectors) == set(reference.vectors), audit.name
        for name, vector in reference.vectors.items():
            torch.testing.assert_close(ours.vectors[name], vector, rtol=1e-4, atol=1e-6, msg=f"{audit.name}: {name}")
    assert cb.last_results["layer_map"].graphs["layer_map"]["layers"] == ["model.conv1", "model.conv2", "model.fc"]
