"""CausalRepairModule's fused check (``fuse_forward``): a fused pass that draws random numbers (dropout) is thrown away,
the step running unfused. It put back the generators only, so that spectral norm's power iteration, which the thrown-away
pass advanced, stood one step ahead for the task's pass (−0.4673 → −0.4285 in review_leftovers_s42a's case). Now the
pass is undone (:meth:`PairedPasses.first_kept`), and a model whose task pass draws at the step that finds it carries no
state is not fused at all, so that its fit equals the fit without ``fuse_forward`` (a two-term fit was one power
iteration a term off: the thrown-away pass made up for the first step's undone term passes, one, not two)."""

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm


def _net(p: float) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), spectral_norm(nn.Linear(16, 16)), nn.ReLU(), nn.Dropout(p),
                         nn.Linear(16, 2)).train()


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    x[:, 2], x[:, 3] = (x[:, 2] > 0).float(), (x[:, 3] > 0).float()
    return x, torch.arange(32) % 2


def _module(net: nn.Module, fuse: bool, columns: tuple[int, ...] = (2,)) -> CausalRepairModule:
    terms = [CounterfactualFairnessTerm(AttributeFlip(c), name=f"cf{c}") for c in columns]
    module = CausalRepairModule(net, terms, fuse_forward=fuse).train()
    module.log = module.log_dict = lambda *a, **k: None
    return module


def test_thrown_away_fused_pass_leaves_spectral_norm_as_found():
    net = _net(0.0)  # draws nothing at the first step: fused from the second
    module = _module(net, fuse=True)
    seen = []
    net[2].register_forward_pre_hook(lambda m, a: seen.append((a[0].shape[0], m.parametrizations.weight[0]._u.clone())))
    x, y = _batch()
    torch.manual_seed(1)
    module.training_step((x, y), 0)
    net[4].p = 0.3  # dropout on: the second step's fused pass draws, and is thrown away
    seen.clear()
    module.training_step((x, y), 1)
    assert module.__dict__["_draws"][net] is True  # the fused check's record, per model (leftovers_s43a: was _fused_draws)
    (fused_rows, u_fused), (task_rows, u_task) = seen[:2]
    assert (fused_rows, task_rows) == (64, 32)
    assert torch.equal(u_task, u_fused)  # before: the task's pass saw the vector the thrown-away pass advanced


def test_drawing_model_fits_as_without_fuse_forward():
    x, y = _batch()
    got = []
    for fuse in (True, False):
        module = _module(_net(0.3), fuse, columns=(2, 3))
        torch.manual_seed(1)
        losses = [module.training_step((x, y), i).detach() for i in range(3)]
        got.append((torch.stack(losses), module.model[2].parametrizations.weight[0]._u.clone()))
    assert torch.equal(got[0][0], got[1][0])
    assert torch.equal(got[0][1], got[1][1])  # before: one power iteration a term behind (the first step's term passes undone)
