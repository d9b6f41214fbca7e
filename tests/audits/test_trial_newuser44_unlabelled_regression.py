"""An autoencoder of tabular rows (a flat reconstruction [N, D], trained with the ``nn.MSELoss`` it holds) audited
on a probe without labels, as an autoencoder's is (its inputs are its targets): docs/your_model.md says that with
``target=None`` the audits explain its largest element and warn where the model holds a regression loss. They warned
only where the probe held real-valued labels: without labels the model's loss was not read, nothing warned, the
curves took a softmax over the reconstruction silently and the figures called its elements classes (newuser44 trial)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline, InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting.map_data import MapData, sample_title


class RowAutoencoder(nn.Module):
    def __init__(self, loss: bool = True) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(6, 3), nn.ReLU(), nn.Linear(3, 6))
        if loss:
            self.loss = nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _run(audit, model):
    torch.manual_seed(0)
    x = torch.randn(12, 6, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = audit.run(model.eval(), Probe(x))
    return result, [str(w.message) for w in caught]


@pytest.mark.parametrize("audit", [InputEffectAudit(ace_values=None), CaptumBaseline(methods=["Saliency"])], ids=["effects", "captum"])
def test_the_predicted_class_of_an_unlabelled_regression_is_warned_of(audit):
    result, messages = _run(audit, RowAutoencoder())
    said = [m for m in messages if "explains the predicted class" in m]
    assert len(said) == 1 and "the largest of the model's 6 outputs" in said[0]
    assert "the model says it is a regression (a regression loss it holds, e.g. nn.MSELoss" in said[0]
    assert "Pass `target=k` to explain output k" in said[0]
    assert result.meta["regression"] is True
    title = sample_title(MapData(torch.zeros(12, 6), {}, audit.name, result.meta, None), 0)
    assert title.endswith("explains output " + str(result.meta["targets"][0]))  # not "class k"


def test_the_softmax_of_an_unlabelled_regression_is_warned_of_and_raw_scores_are_not():
    _, messages = _run(CaptumBaseline(methods=["Saliency"], target=2), RowAutoencoder())
    softmax = [m for m in messages if "explains the softmax" in m]
    assert len(softmax) == 1 and "the model says it is a regression" in softmax[0]
    assert "`settings=CompareSettings(score='raw')`" in softmax[0]
    from lightning_causal.audits import CompareSettings

    _, messages = _run(CaptumBaseline(methods=["Saliency"], target=2, settings=CompareSettings(score="raw")), RowAutoencoder())
    assert not [m for m in messages if "explains the softmax" in m or "predicted class" in m]


def test_a_model_that_says_nothing_of_its_task_is_not_warned_of():
    for audit in (InputEffectAudit(ace_values=None), CaptumBaseline(methods=["Saliency"])):
        result, messages = _run(audit, RowAutoencoder(loss=False))
        assert not [m for m in messages if "predicted class" in m or "explains the softmax" in m]
        assert "regression" not in result.meta


class SampledVAE(nn.Module):
    """A VAE drawing its latent in every pass, its loss written elsewhere (nothing held): forward -> (recon, mu, logvar)."""

    def __init__(self, declare: bool) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 4)
        self.dec = nn.Linear(2, 6)
        if declare:
            self.hparams = {"task": "regression"}  # what docs/your_model.md says to set, as LightningModule.hparams holds it

    def forward(self, x: torch.Tensor):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return self.dec(mu + torch.randn_like(mu) * (0.5 * logvar).exp()), mu, logvar


@pytest.mark.parametrize("declare", [False, True], ids=["silent", "declared"])
def test_a_vae_latent_mean_is_output_k_where_the_model_says_it_regresses(declare):
    audit = CaptumBaseline(methods=["Saliency"], output=lambda out: out[1], target=0)
    result, messages = _run(audit, SampledVAE(declare))
    title = sample_title(MapData(torch.zeros(12, 6), {}, audit.name, result.meta, None), 0)
    softmax = [m for m in messages if "explains the softmax" in m]
    if declare:
        assert title.endswith("explains output 0") and len(softmax) == 1
    else:  # the docs' reason to declare it: nothing tells
        assert title.endswith("explains class 0") and softmax == []
