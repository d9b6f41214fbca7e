"""Final read F of 3ce41662, 9f74e8ee and d14488b9. (1) A user's lazy layer (`class L(LazyModuleMixin, nn.Module)`,
PyTorch's documented pattern) crashed every audit: the first `torch.nn` class of its MRO, `LazyModuleMixin`, has no
`forward`. (2) Every user subclass of a torch layer overriding `forward` was copied and compared at each audit block,
writing or not (a weight-standardised conv, timm's `LayerNorm2d`): 19.4 -> 80.7 ms a block on 16 such convolutions;
only a forward writing through `.data` (EEGNet's max-norm layers) is kept now. (3) A model whose root holds an unrelated
`merged = False` beside one parameter of its own (a CLIP-style `logit_scale`) was copied whole at every audit.
(4) A `param_writes_refused` block inside one for the same model walked the whole model again."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import lightning_causal.causal.engine.param_writes as pw
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.init_writes import uninitialised_params
from lightning_causal.causal.engine.state import _renorm_weights, audit_mode


class _LazyScale(nn.modules.lazy.LazyModuleMixin, nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.parameter.UninitializedParameter()

    def initialize_parameters(self, x):
        if self.has_uninitialized_params():
            with torch.no_grad():
                self.scale.materialize((x.shape[-1],))
                self.scale.fill_(2.0)

    def forward(self, x):
        return x * self.scale


class _StdConv(nn.Conv2d):  # weight standardisation: reads its weight, writes nothing
    def forward(self, x):
        w = self.weight
        w = (w - w.mean((1, 2, 3), keepdim=True)) / (w.std((1, 2, 3), keepdim=True) + 1e-5)
        return F.conv2d(x, w, self.bias, self.stride, self.padding)


class _MaxNorm(nn.Linear):  # EEGNet's LinearWithConstraint
    def forward(self, x):
        self.weight.data = torch.renorm(self.weight.data, p=2, dim=0, maxnorm=0.5)
        return super().forward(x)


def test_a_user_lazy_layer_is_audited():
    model = nn.Sequential(nn.Linear(3, 4), _LazyScale(), nn.Linear(4, 2))
    x = torch.randn(5, 3)
    model(x)  # built
    fm = torch.arange(3)[None]
    e = input_effects(model.eval(), x, fm, target=0)
    assert e.shape == (5, 3) and torch.isfinite(e).all()


def test_only_layers_writing_through_data_are_kept():
    model = nn.Sequential(_StdConv(2, 2, 3, padding=1), nn.Flatten(), _MaxNorm(32, 2))
    kept = {id(w) for w, _ in _renorm_weights(model).values()}
    assert kept == {id(model[2].weight), id(model[2].bias)}
    before = model[2].weight.detach().clone()
    with audit_mode(model):
        model(torch.randn(3, 2, 4, 4))
    assert torch.equal(model[2].weight, before)  # the constraint's write put back


class _Root(nn.Module):  # a LightningModule-like root: an unrelated flag beside a parameter of its own
    def __init__(self):
        super().__init__()
        self.merged = False
        self.logit_scale = nn.Parameter(torch.tensor(2.0))
        self.net = nn.Sequential(nn.Linear(8, 64), nn.ReLU(), nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 2)))

    def forward(self, x):
        return self.net(x) * self.logit_scale


def test_an_unrelated_flag_on_the_root_does_not_copy_the_model():
    model = _Root()
    kept = {id(p) for p in uninitialised_params(model)}
    assert kept == {id(model.logit_scale)}  # its own and its children's (net holds none): not 4,354 parameters


def test_a_block_inside_one_for_the_same_model_walks_nothing(monkeypatch):
    class User(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            return self.lin(x)

    walks = []
    real = pw.watched_params
    monkeypatch.setattr(pw, "watched_params", lambda m: walks.append(m) or real(m))
    model = User()
    with pw.param_writes_refused(model):
        for _ in range(5):
            with pw.param_writes_refused(model):
                model(torch.ones(1, 3))
    assert len(walks) == 1


class _Helper(nn.Linear):  # the constraint written in a method its forward calls
    def _constrain(self):
        self.weight.data = torch.renorm(self.weight.data, p=2, dim=0, maxnorm=0.5)

    def forward(self, x):
        self._constrain()
        return super().forward(x)


class _Sub(_MaxNorm):  # a subclass of a kept layer calling super().forward
    def forward(self, x):
        return super().forward(x)


class _Copy(nn.Linear):  # the constraint written in place
    def forward(self, x):
        with torch.no_grad():
            self.weight.copy_(torch.renorm(self.weight, p=2, dim=0, maxnorm=0.5))
        return super().forward(x)


def test_constraint_layers_written_through_a_helper_a_subclass_or_in_place_are_kept():
    """Second final read of bc8012d0: the `.data` test read the class's own forward only, so these three shapes of the
    same layer, kept at 3ce41662, were refused (the model left holding the renormalised weight)."""
    for cls in (_Helper, _Sub, _Copy):
        torch.manual_seed(0)
        model = nn.Sequential(cls(4, 3), nn.ReLU(), nn.Linear(3, 2))
        with torch.no_grad():
            model[0].weight.mul_(5.0)  # norms above the constraint's
        before = model[0].weight.detach().clone()
        e = input_effects(model.eval(), torch.randn(6, 4), torch.arange(4)[None], target=0)
        assert torch.isfinite(e).all() and torch.equal(model[0].weight, before), cls.__name__


class _OwnWeightLoRA(nn.Module):  # its own weight, A and B as child Linears, merging into its own weight
    def __init__(self):
        super().__init__()
        self.merged = False
        self.weight = nn.Parameter(torch.randn(3, 4))
        self.A, self.B = nn.Linear(4, 2, bias=False), nn.Linear(2, 3, bias=False)

    def forward(self, x):
        delta = (self.B.weight @ self.A.weight).detach()
        if not self.training and not self.merged:
            self.weight.data += delta
            self.merged = True
        elif self.training and self.merged:
            self.weight.data -= delta
            self.merged = False
        return x @ self.weight.T if self.merged else x @ self.weight.T + self.B(self.A(x))


def test_a_lora_holding_one_parameter_of_its_own_is_kept():
    """Second final read of bc8012d0: a merge-flag holder with one parameter of its own (its weight; A and B child
    Linears) kept only its children's, so its merged weight was refused instead of put back."""
    torch.manual_seed(0)
    model = nn.Sequential(_OwnWeightLoRA(), nn.ReLU(), nn.Linear(3, 2)).train()
    before = model[0].weight.detach().clone()
    input_effects(model, torch.randn(5, 4), torch.arange(4)[None], target=0)
    assert torch.equal(model[0].weight, before) and model[0].merged is False


def test_a_lazy_parameter_created_inside_the_outer_block_is_watched_by_the_inner_one():
    """Second final read of bc8012d0: the inner block for the same model read nothing, so a parameter a lazy layer
    of the user's created on the audit's first pass (not there when the outer block walked) was watched by no block."""
    import pytest

    class Writes(nn.modules.lazy.LazyModuleMixin, nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.parameter.UninitializedParameter()

        def initialize_parameters(self, x):
            if self.has_uninitialized_params():
                with torch.no_grad():
                    self.p.materialize((x.shape[-1],))
                    self.p.zero_()

        def forward(self, x):
            return x + self.p

    model = nn.Sequential(nn.Linear(3, 3), Writes())
    model[0].__class__ = type("UserLinear", (nn.Linear,), {})  # a user class: the root's walk watches it
    with pytest.raises(ValueError, match=r"wrote `1.p`"), pw.param_writes_refused(model):
        model(torch.ones(1, 3))  # creates 1.p
        with pw.param_writes_refused(model):
            model[1].p.data += 1.0
