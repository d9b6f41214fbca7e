"""CausalRepairModule's fused check kept one answer for the fit: a model whose pass drew once (dropout on) ran unfused
for the rest of the fit, after its dropout was turned off or the network swapped (``_fused_draws`` never reset), and
the buffers record (``_fused_written``, a plain dict) held every network it saw strongly. Now the answer is kept per
model by weak reference (:func:`~lightning_causal.repair.paired_rows.pass_records`, as the terms keep theirs) and read
again at every step where the model drew at its last check: it draws nothing now, fused from the next step."""

import gc
import pickle
import weakref

import torch
from torch import nn

from tests.repair.test_mends_s42e_fused_check_undone import _batch, _module, _net


def _rows_per_pass(module, steps, before_step=None) -> list[list[int]]:
    """The rows of each head call at each step (a forward pre-hook on the last layer)."""
    x, y = _batch()
    seen: list[int] = []
    out = []
    for i in range(steps):
        if before_step is not None:
            before_step(i)
        net = module.model
        hook = net[5].register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
        module.training_step((x, y), i)
        hook.remove()
        out.append(seen[:])
        seen.clear()
    return out


def test_dropout_turned_off_is_fused_again() -> None:
    net = _net(0.3)
    module = _module(net, fuse=True)
    torch.manual_seed(1)

    def off(i: int) -> None:
        if i == 2:
            net[4].p = 0.0  # from step 2 the passes draw nothing

    calls = _rows_per_pass(module, 5, off)
    # step 1 draws: unfused (the task's pass of 32, the term's paired passes 32 + 32); step 2 finds it draws nothing now
    # (the task's pass unfused, its term's passes undone); steps 3-4: one fused pass of 64 rows. Before: unfused to the end.
    assert calls[3] == [64] and calls[4] == [64], calls
    assert calls[1] == [32, 32, 32] and calls[2][0] == 32, calls


def test_fused_again_computes_what_a_new_module_computes() -> None:
    x, y = _batch()
    got = []
    for renewed in (False, True):
        net = _net(0.3)
        module = _module(net, fuse=True)
        torch.manual_seed(1)
        losses = []
        for i in range(5):
            if i == 2:
                net[4].p = 0.0
                if renewed:  # a new module (and terms) around the same network, in the state the steps left it
                    module = _module(net, fuse=True)
            losses.append(module.training_step((x, y), i).detach())
        got.append((torch.stack(losses), net[2].parametrizations.weight[0]._u.clone()))
    assert torch.equal(got[0][0], got[1][0])  # before: unfused from step 2 on, 2.8e-5 off at step 3
    assert torch.equal(got[0][1], got[1][1])


def test_a_swapped_network_is_fused_and_the_old_one_not_held() -> None:
    module = _module(_net(0.3), fuse=True)
    torch.manual_seed(1)
    _rows_per_pass(module, 1)  # drew: unfused
    old = weakref.ref(module.model)
    module.model = _net(0.0)

    calls = _rows_per_pass(module, 2)
    assert calls[-1] == [64], calls  # the new network draws nothing: fused (before: unfused for the rest of the fit)
    gc.collect()
    assert old() is None  # before: the buffers record held it
    module.model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Dropout(0.3),
                                 nn.Linear(16, 2)).train()  # no spectral norm: torch pickles it
    _rows_per_pass(module, 1)
    del module.log, module.log_dict  # the test's stubs
    pickle.loads(pickle.dumps(module))  # the weak records are left out of a pickle (ddp_spawn)
