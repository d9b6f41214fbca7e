"""The gradient-path checks of CaptumBaseline (the surrogate gradient) and of the first-order hidden-unit estimates
through a model holding a reentrant ``torch.utils.checkpoint``.

Since e27ab53 ``gradient_check.check_gradient_path`` without ``model=`` skips the check wherever a walk of the output's
graph finds a reentrant checkpoint (before, it skipped only where torch refused ``torch.autograd.grad``: a checkpoint
on the path to the site). ``captum_report.warn_surrogate_gradient`` and ``unit_attribution._check_paths`` called it
without ``model=``, so a checkpoint on a branch the site does not feed (here a learned embedding run through a
checkpointed block) silenced the warning that the gradient misses part of the output's dependence (a ``.detach()``
branch): the maps and the first-order estimates followed a surrogate with nothing said. Both pass the model now, and
the check runs through the checkpoint by ``backward()``: the same warning as without the checkpoint, no ``.grad`` left."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_baseline import CaptumBaseline
from lightning_causal.causal import unit_effects


class _Side(nn.Module):
    """A ``.detach()`` branch after ``l1`` and a reentrant checkpoint on a branch of the parameters only; the forward
    checks the rank of ``h`` (control flow torch.fx cannot trace: the unit estimates run the whole model by hooks)."""

    def __init__(self, checkpointed: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.pos = nn.Linear(5, 8), nn.Linear(8, 3), nn.Linear(8, 8)
        self.grid = nn.Parameter(torch.randn(1, 8))
        self.checkpointed = checkpointed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.l1(x)
        if h.dim() != 2:
            raise ValueError("expected [N, 8]")
        p = checkpoint(self.pos, self.grid, use_reentrant=True) if self.checkpointed else self.pos(self.grid)
        return self.l2(torch.tanh(h + p)) + self.l2(h).detach()


_X = torch.randn(16, 5, generator=torch.Generator().manual_seed(1))


def _misses(call) -> list[str]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in seen if "misses part of how the output depends on it" in str(w.message)]


@pytest.mark.parametrize("which", ["captum", "units"])
def test_the_gradient_path_check_runs_beside_a_reentrant_checkpoint(which):
    def run(model: nn.Module) -> None:
        if which == "captum":
            CaptumBaseline(("Saliency", "FeatureAblation"), target=0).run(model, Probe(_X))
        else:
            unit_effects(model, _X, "l1", method="attribution", target=0)

    plain, model = _Side(checkpointed=False).eval(), _Side(checkpointed=True).eval()
    ref = _misses(lambda: run(plain))
    assert len(ref) == 1
    assert _misses(lambda: run(model)) == ref  # was silent with the checkpoint: the check skipped, the same gaps now
    assert all(p.grad is None for p in model.parameters())
