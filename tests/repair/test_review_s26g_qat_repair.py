"""A quantization-aware model (``prepare_qat``) fine-tuned with CausalRepairModule's terms (review of newuser43's
QAT mend, ef4e040e): a fake-quant observer updates its range and scale at every forward pass, in eval mode too."""

from __future__ import annotations

import copy

import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor import Trigger
from tests.helpers.quantization import qat_mlp


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_backdoor_terms_frozen_reference_keeps_the_scales_it_was_copied_with():
    model = qat_mlp(4)
    trigger = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 8.0]), target=1)
    term = BackdoorSuppressionTerm(trigger, distill_weight=1.0, augment=None)
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)
    probe = torch.randn(5, 4, generator=g)
    import torch.ao.quantization as tq

    for restored in (False, True):
        with torch.no_grad():  # the model as copied, on the scales it holds (an observer on would move them first)
            expected = copy.deepcopy(model).eval().apply(tq.disable_observer)(probe)
        if restored:  # a resumed fit's reference, from a checkpoint saved with its observers on (before the mend)
            state = term.state_dict()
            state["reference"] = dict(model.state_dict())
            term.load_state_dict(state, model)
        else:
            term.setup(model)
        copied = _state(term.reference)
        for _ in range(3):  # before: every step's clean and stamped rows moved the reference's ranges and scales
            term.loss(model, x, y)
        after = _state(term.reference)
        assert [k for k in copied if not torch.equal(copied[k], after[k])] == []
        with torch.no_grad():
            torch.testing.assert_close(term.reference(probe), expected, rtol=0, atol=0)


def test_a_qat_model_gets_its_own_task_loss_with_the_default_fuse_forward():
    from torch.nn import functional as F

    from lightning_causal import CausalRepairModule, CounterfactualFairnessTerm
    from lightning_causal.causal import AttributeFlip

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 4, generator=g)
    x[:, 0] = (torch.rand(64, generator=g) < 0.2).float() * 6  # the flipped rows widen the input's range
    y = (x[:, 1] > 0).long()
    net = qat_mlp(4)
    reference = copy.deepcopy(net)
    term = CounterfactualFairnessTerm(AttributeFlip(0, values=(0.0, 6.0)))
    # before: the joint pass of x and its counterfactuals set the scales the x rows were quantized with
    total, logs = CausalRepairModule(net, [term]).objective((x, y))  # fuse_forward=True, the default
    task = F.cross_entropy(reference(x), y)
    torch.testing.assert_close(logs["repair/task_loss"], task.detach(), rtol=0, atol=0)
    expected = task + 5.0 * term.loss(reference, x, y)  # the term's own pass after the task's, as the unfused step
    torch.testing.assert_close(total, expected, rtol=0, atol=0)
    after, kept = _state(net), _state(reference)  # the observers saw both passes' rows, as in the unfused step
    assert [k for k in kept if not torch.equal(kept[k], after[k])] == []
