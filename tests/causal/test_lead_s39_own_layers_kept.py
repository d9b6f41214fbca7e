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
    assert kept == set()  # its children's own only (net holds none), as dc3f1f0d left it: not 4,354 parameters


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
