"""Review of ba058f04 and 8bded857: a lazy module the forward never calls (a head kept for later) stays unbuilt by
any pass. audit_model refused such a model with a way out that cannot build it ("build them first, with one forward
pass of a batch"), and CausalAuditCallback stopped the fit after its first training step with torch's bare
"Attempted to use an uninitialized parameter in <method 'requires_grad_' ...>". Both now name the module and the ways
out that work: remove it, or call it once; a model whose head was called once is audited as the one without it."""

import warnings

import pytest
import torch
from lightning.pytorch import seed_everything
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, audit_model
from lightning_causal.audits import InputEffectAudit
from tests.helpers.lightning import trainer
from tests.test_leftovers_s28b_lazy_module import _X, _Y, _Lazy

_WAY_OUT = r"a lazy module the forward never calls .* remove it from the model, or build it by calling it once"


class _Body(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Linear(3, 2)
        self.unused = nn.LazyLinear(5)  # a head kept for later, never called in forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def test_audit_model_names_the_way_out_of_a_lazy_module_never_called_and_it_works() -> None:
    model, x = _Body(), torch.randn(8, 3)
    model(x)  # the refusal's first way out builds nothing here
    with pytest.raises(MisconfigurationException, match=r"got \['unused'\] .*" + _WAY_OUT):
        audit_model(model, InputEffectAudit(ace_values=None), x)
    model.unused(torch.zeros(1, 4))  # the way out the message names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (built,) = audit_model(model, InputEffectAudit(ace_values=None), x)
        del model.unused
        (without,) = audit_model(model, InputEffectAudit(ace_values=None), x)
    assert torch.equal(built.vectors["mean_abs_effect"], without.vectors["mean_abs_effect"])


class _WithUnusedHead(_Lazy):
    def __init__(self) -> None:
        super().__init__()
        self.unused = nn.LazyLinear(3)


def test_the_callback_names_a_lazy_module_the_first_training_step_did_not_build(tmp_path) -> None:
    seed_everything(1, verbose=False)
    with pytest.raises(MisconfigurationException, match=r"did not build \(unused\): " + _WAY_OUT):
        trainer(tmp_path, max_epochs=1, callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None)])]).fit(
            _WithUnusedHead(), DataLoader(TensorDataset(_X, _Y), batch_size=8), DataLoader(TensorDataset(_X, _Y), batch_size=8))
