"""CausalRepairModule fine-tuning a model that returns a ``torch.distributions.Normal`` on its own negative
log-likelihood (newuser51's trial): without ``output=`` the fit stopped with select_output's TypeError, whose
example, ``output='mean'``, gives the task loss the mean alone (no likelihood can be computed from it). The
refusal now names the way that works: ``output=`` stacks the tensors the task loss rebuilds the distribution from,
and each term reads the model's return value through an ``output=`` of its own; following it, the task loss is the
Gaussian NLL written out by hand and a term keeps its own `output=` (the means)."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.distributions import Normal
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm

X = torch.tensor([[1.0, 2.0, 1.0], [-1.0, 0.5, 0.0], [0.5, -1.0, 1.0], [2.0, 1.0, 0.0]])
Y = torch.tensor([0.5, -1.0, 3.0, 2.0])


class Heteroscedastic(nn.Module):
    """Normal(x0 + 0.5 x2, exp(0.25 x1)): column 2 a binary attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[1.0, 0.0, 0.5], [0.0, 0.25, 0.0]]))

    def forward(self, x):
        h = self.lin(x)
        return Normal(h[:, 0], h[:, 1].exp())


def _nll(out, y):
    return -Normal(out[..., 0], out[..., 1]).log_prob(y).mean()


def _trainer() -> pl.Trainer:
    return pl.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, logger=False, enable_progress_bar=False,
                      enable_model_summary=False, enable_checkpointing=False, num_sanity_val_steps=0)


def test_a_distribution_without_output_is_refused_naming_the_stacked_tensors():
    module = CausalRepairModule(Heteroscedastic(), [CounterfactualFairnessTerm(AttributeFlip(2), output="mean")],
                                task_loss=lambda out, y: -out.log_prob(y).mean())
    with pytest.raises(MisconfigurationException, match=r"got Normal, and no `output=`\. The task loss takes one tensor: .*"
                                                        r"`output=lambda out: torch\.stack\(\[out\.mean, out\.stddev\], -1\)`"):
        _trainer().fit(module, DataLoader(TensorDataset(X, Y), batch_size=4))


def test_the_named_way_trains_on_the_hand_written_nll_and_the_term_reads_the_mean():
    term = CounterfactualFairnessTerm(AttributeFlip(2), output="mean", distance="logit")
    module = CausalRepairModule(Heteroscedastic(), [term], task_loss=_nll,
                                output=lambda out: torch.stack([out.mean, out.stddev], -1))
    with torch.no_grad():
        loss = module.task_loss(module.model_outputs(X), Y)
    mean, log_sd = X[:, 0] + 0.5 * X[:, 2], 0.25 * X[:, 1]
    hand = (0.5 * ((Y - mean) / log_sd.exp()) ** 2 + log_sd + 0.5 * math.log(2 * math.pi)).mean()
    torch.testing.assert_close(loss, hand, rtol=0, atol=1e-6)
    trainer = _trainer()
    trainer.fit(module, DataLoader(TensorDataset(X, Y), batch_size=4))
    assert math.isfinite(float(trainer.callback_metrics["repair/task_loss"]))
    assert term.output == "mean"  # a term with its own output= keeps it: the means, not the stacked tensors
