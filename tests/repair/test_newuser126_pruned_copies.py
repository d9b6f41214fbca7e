"""Trial newuser126: a new user's pruned CNN (``torch.nn.utils.prune``) and layers under the older ``spectral_norm`` /
``weight_norm`` hooks, fine-tuned with ``BackdoorSuppressionTerm``. These modules hold their computed weight as a plain
attribute with a ``grad_fn`` (prune sets ``weight_orig * weight_mask`` with the gradient on; the hooks after a training
pass), which ``copy.deepcopy`` refuses ("Only Tensors created explicitly by the user (graph leaves) support the deepcopy
protocol"): the term's frozen reference and Feature Shift Tuning's copy failed at set-up, in a fit without a sanity
check (``num_sanity_val_steps=0``, no validation loader), on a resumed fit, or after any training pass. The copies now
hold that weight detached, computed again by their own hooks from their own parameters."""

from __future__ import annotations

import torch
import torch.nn.utils.prune as prune
from torch import nn

from lightning_causal import BackdoorSuppressionTerm, CausalRepairModule
from lightning_causal.causal import Trigger
from lightning_causal.causal.backdoor.feature_shift import feature_shifted
from tests.helpers.lightning import loaders, trainer


class Net(nn.Module):
    def __init__(self, hook=None) -> None:
        super().__init__()
        self.conv1, self.conv2, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Conv2d(4, 6, 3, padding=1), nn.Linear(96, 10)
        if hook is not None:
            self.conv2 = hook(self.conv2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = nn.functional.max_pool2d(torch.relu(self.conv2(torch.relu(self.conv1(x)))), 2)
        return self.fc(h.flatten(1))


def _pruned() -> Net:
    torch.manual_seed(0)
    net = Net()
    prune.ln_structured(net.conv2, "weight", amount=2, n=2, dim=0)  # weight = weight_orig * weight_mask, a grad_fn
    prune.custom_from_mask(net.conv2, "bias", mask=net.conv2.weight_mask.flatten(1).amax(1))
    prune.l1_unstructured(net.fc, "weight", amount=0.3)
    return net


def _trigger() -> Trigger:
    mask = torch.zeros(1, 8, 8)
    mask[:, -2:, -2:] = 1.0
    return Trigger(mask, torch.ones(1, 8, 8), target=0)


def test_the_reference_of_a_pruned_cnn_is_its_copy():
    net = _pruned()
    assert net.conv2.weight.grad_fn is not None and net.fc.weight.grad_fn is not None
    x = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for inputs in (None, x):
        term = BackdoorSuppressionTerm(_trigger())
        term.setup(net, inputs)
        ref = term.reference
        torch.testing.assert_close(ref(x), net.eval()(x), rtol=0, atol=0)
        assert len(ref.conv2._forward_pre_hooks) == 2 and len(net.conv2._forward_pre_hooks) == 2  # the copy's own hooks
        assert ref.conv2.weight_orig is not net.conv2.weight_orig and not ref.conv2.weight_orig.requires_grad
        with torch.no_grad():
            net.conv2.weight_orig.add_(1.0)  # the model trains on: the reference keeps the weights it was copied with
        ref(x)
        assert not torch.equal(ref.conv2.weight, net.conv2.weight_orig * net.conv2.weight_mask)
        assert (ref.conv2.weight[net.conv2.weight_mask == 0] == 0).all()
        with torch.no_grad():
            net.conv2.weight_orig.sub_(1.0)


def test_the_older_hooks_after_a_training_pass_are_copied():
    for hook in (nn.utils.spectral_norm, nn.utils.weight_norm):
        torch.manual_seed(0)
        net = Net(hook).train()
        net(torch.rand(2, 1, 8, 8)).sum().backward()  # the hook's weight now has a grad_fn
        assert net.conv2.weight.grad_fn is not None
        term = BackdoorSuppressionTerm(_trigger())
        term.setup(net)
        x = torch.rand(4, 1, 8, 8)
        torch.testing.assert_close(term.reference(x), net.eval()(x), rtol=1e-6, atol=1e-6)


def test_feature_shift_tuning_copies_a_pruned_cnn():
    net = _pruned()
    weights = {k: v.clone() for k, v in net.state_dict().items()}
    shifted = feature_shifted(net, torch.rand(16, 1, 8, 8), 10, epochs=1)
    assert shifted is not net and all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())
    assert net.conv2.weight.grad_fn is not None  # the model's own attribute is left as it was


def test_a_repair_fit_of_a_pruned_cnn_without_a_sanity_check(tmp_path):
    net = _pruned()
    mask, frozen = net.conv2.weight_mask.clone(), net.conv1.weight.clone()
    net.conv1.weight.requires_grad_(False)
    train, val = loaders(batch_size=32)
    trainer(tmp_path, max_epochs=1, num_sanity_val_steps=0).fit(
        CausalRepairModule(net, [BackdoorSuppressionTerm(_trigger(), weight=0.5)], lr=0.01), train, val)
    assert (net.conv2.weight[mask == 0] == 0).all() and torch.equal(net.conv1.weight, frozen)
    assert len(net.conv2._forward_pre_hooks) == 2


def _shifted_head(net: Net, x: torch.Tensor) -> torch.Tensor:
    shifted = feature_shifted(net, x, 10, epochs=1, lr=1e-12)  # the re-initialised head, as good as untrained
    with torch.no_grad():
        shifted(x[:1])  # the forward computes a pruned or parametrized weight
    return shifted.fc.weight.detach()


def test_feature_shift_tuning_reinitialises_a_pruned_or_parametrized_head():
    """Feature Shift Tuning re-initialises the copy's head (uniform, scaled to the head's norm) and renormalises it after
    each step. On a pruned head (``weight_orig * weight_mask``) or a parametrized one it wrote into ``head.weight``, a
    tensor the forward computes again: the copy tuned from the model's own head (0 apart at lr 1e-12). Reference: the
    plain head's draw ``u`` (same generator), masked (pruned entries 0) and scaled to the pruned head's norm; through
    ``weight_norm``, ``u`` scaled to the head's norm exactly."""
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = Net()
    u = _shifted_head(plain, x)
    pruned = copy_of(plain)
    prune.l1_unstructured(pruned.fc, "weight", amount=0.3)
    mask, w0 = pruned.fc.weight_mask, pruned.fc.weight.detach()
    head = _shifted_head(pruned, x)
    assert (head[mask == 0] == 0).all()
    torch.testing.assert_close(head, (u * mask) * (w0.norm() / (u * mask).norm()), rtol=1e-5, atol=1e-6)
    normed = copy_of(plain)
    torch.nn.utils.parametrizations.weight_norm(normed.fc)
    torch.testing.assert_close(_shifted_head(normed, x), u, rtol=1e-5, atol=1e-6)
    spectral = copy_of(plain)
    torch.nn.utils.parametrizations.spectral_norm(spectral.fc)
    assert not torch.allclose(_shifted_head(spectral, x), spectral.fc.weight.detach(), atol=1e-2)  # re-initialised


def copy_of(net: Net) -> Net:
    other = Net()
    other.load_state_dict(net.state_dict())
    return other


def test_feature_shift_tuning_under_the_older_hooks():
    """The older hooks' ``weight`` is an attribute their pre-hook computes at each pass: written there, the
    re-initialisation was lost (the copy tuned from the model's head); renormalising ``weight_orig`` from it, one step
    behind after ``opt.step()``, put the step's weights back (the head never trained: ``weight_orig`` 1.5e-8 apart after
    3 epochs at lr 1e-2 and at lr 1e-12). Now ``spectral_norm``'s ``weight_orig`` takes the draw (the forward divides it
    by its largest singular value) and trains; ``weight_norm``'s ``weight_g``/``weight_v`` give the plain head's draw
    exactly."""
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(0)
    plain = Net()
    u = _shifted_head(plain, x)
    spectral = copy_of(plain)
    nn.utils.spectral_norm(spectral.fc)
    still = feature_shifted(spectral, x, 10, epochs=1, lr=1e-12)
    tuned = feature_shifted(spectral, x, 10, epochs=3, lr=1e-2)
    assert (tuned.fc.weight_orig - still.fc.weight_orig).abs().max() > 1e-3
    head = _shifted_head(spectral, x)  # the draw over its largest singular value: along the plain head's draw
    assert torch.nn.functional.cosine_similarity(head.flatten(), u.flatten(), 0) > 0.9999
    normed = copy_of(plain)
    nn.utils.weight_norm(normed.fc)
    torch.testing.assert_close(_shifted_head(normed, x), u, rtol=1e-5, atol=1e-6)
