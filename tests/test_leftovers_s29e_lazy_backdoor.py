"""CausalRepairModule with BackdoorSuppressionTerm on a model holding a lazy module not built yet (nn.LazyLinear)
stopped at the start of training with torch's "Attempted to use an uninitialized parameter" from term_setup's
weights_print, naming neither the module nor the remedy; past it, the term's set-up would read weights not drawn yet
(its reference copy, built by its own first pass, would hold other weights than the model's). It is refused with the
package's lazy words naming the term and the module; the model built by one pass first fits."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalRepairModule
from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm

WORDS = (r"^CausalRepairModule: expected the model's lazy modules to be built before the terms \['backdoor_suppression'\] "
         r"are set up .* but got \['1'\] not built yet .*`model\(x\)`")


def _fit(built: bool) -> tuple[torch.Tensor, nn.Module]:
    pl.seed_everything(0, verbose=False)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 1, 6, 6, generator=g), torch.randint(0, 3, (32,), generator=g)
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 3))
    if built:
        model(x[:1])
    before = torch.cat([p.detach().flatten() for p in model.parameters()]) if built else torch.empty(0)
    mask = torch.zeros(6, 6)
    mask[4:, 4:] = 1.0
    repair = CausalRepairModule(model, [BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 6, 6), 0))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False).fit(repair, DataLoader(TensorDataset(x, y), batch_size=8))
    return before, model


def test_an_unbuilt_lazy_model_is_refused_naming_the_term_and_the_module() -> None:
    with pytest.raises(MisconfigurationException, match=WORDS):  # before: torch's "uninitialized parameter" ValueError
        _fit(built=False)


def test_the_model_built_by_one_pass_first_is_repaired() -> None:
    before, model = _fit(built=True)
    after = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert after.shape == before.shape == (36 * 8 + 8 + 8 * 3 + 3,)
    assert torch.isfinite(after).all() and not torch.equal(after, before)  # set up and trained
