"""Mends of session 39's final read E of engine/param_writes (48d1bf53) and dc3f1f0d: a max-norm constraint layer (a
user's nn.Linear/nn.Conv2d writing its weight in forward) kept, not refused."""

import warnings

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.causal import input_effects


class LinearWithConstraint(nn.Linear):
    """EEGNet's (braindecode's) max-norm constraint layer: its forward renormalises its weight, a new storage."""

    def __init__(self, *args, max_norm=0.5, **kwargs):
        self.max_norm = max_norm
        super().__init__(*args, **kwargs)

    def forward(self, x):
        self.weight.data = torch.renorm(self.weight.data, p=2, dim=0, maxnorm=self.max_norm)
        return super().forward(x)


class Conv2dWithConstraint(nn.Conv2d):
    """The same constraint written in place through ``.data`` (no version counter bumped)."""

    def __init__(self, *args, max_norm=0.5, **kwargs):
        self.max_norm = max_norm
        super().__init__(*args, **kwargs)

    def forward(self, x):
        self.weight.data.renorm_(p=2, dim=0, maxnorm=self.max_norm)
        return super().forward(x)


def _large(layer):
    with torch.no_grad():
        layer.weight.mul_(10.0)  # rows above the max norm: the forward writes them
    return layer


def test_a_max_norm_constraint_layer_is_audited_and_left_as_found():
    torch.manual_seed(0)
    model = nn.Sequential(_large(LinearWithConstraint(4, 8)), nn.ReLU(), nn.Linear(8, 3)).eval()
    weight, before, storage = model[0].weight, model[0].weight.detach().clone(), model[0].weight.data_ptr()
    input_effects(model, torch.randn(6, 4), target=0)  # refused at 48d1bf53
    assert model[0].weight is weight and weight.data_ptr() == storage
    assert torch.equal(weight, before)
    model(torch.randn(1, 4))  # the layer writes in eval mode: the check above read a real write
    assert not torch.equal(weight, before)


def test_a_constraint_written_in_place_through_data_is_left_as_found():
    torch.manual_seed(0)
    model = nn.Sequential(_large(Conv2dWithConstraint(1, 4, 3)), nn.Flatten(), nn.Linear(64, 2)).eval()
    before = model[0].weight.detach().clone()
    input_effects(model, torch.randn(3, 1, 6, 6), target=1)
    assert torch.equal(model[0].weight, before)


class _Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(LinearWithConstraint(4, 8, max_norm=0.3), nn.ReLU(), nn.Linear(8, 3))

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, _):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, _):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.5, momentum=0.9)


def _fit(tmp_path, callbacks):
    torch.manual_seed(0)
    x, y = torch.randn(48, 4), torch.randint(0, 3, (48,))
    data = DataLoader(TensorDataset(x, y), batch_size=16)
    model = _Net()
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=callbacks, default_root_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, data, data)
    return model


@pytest.mark.filterwarnings("ignore")
def test_a_fit_with_a_constraint_layer_audits_and_trains_as_without_the_callback(tmp_path):
    callback = CausalAuditCallback([InputEffectAudit(name="ie")], probe_size=16, every_n_epochs=1)
    audited = _fit(tmp_path / "a", [callback])  # stopped at 48d1bf53: the layer's writes refused
    plain = _fit(tmp_path / "b", [])
    assert callback.audited_epochs
    for (name, p), q in zip(audited.named_parameters(), plain.parameters()):
        assert torch.equal(p, q), name


class _GrandchildLora(nn.Module):
    """A LoRA wrapper with a bool `merged` flag merging its update into a grandchild (`self.block[0].weight`)."""

    def __init__(self):
        super().__init__()
        self.block = nn.Sequential(nn.Linear(4, 8), nn.ReLU())
        self.A, self.B, self.merged = nn.Parameter(torch.randn(2, 4)), nn.Parameter(torch.randn(8, 2)), False

    def forward(self, x):
        if not self.training and not self.merged:
            self.block[0].weight.data += (self.B @ self.A).detach()
            self.merged = True
        if self.training and self.merged:
            self.block[0].weight.data -= (self.B @ self.A).detach()
            self.merged = False
        out = self.block(x)
        return out if self.merged else out + torch.relu(x @ self.A.T @ self.B.T)


def test_a_lora_flag_holder_merging_into_a_grandchild_is_kept():
    """dc3f1f0d kept a flag holder's and its children's parameters only: this wrapper, which holds the flag it was
    told to hold, was refused; a holder owning parameters (A and B) keeps every parameter below it."""
    from lightning_causal.causal.engine.init_writes import uninitialised_params

    torch.manual_seed(0)
    model = nn.Sequential(_GrandchildLora(), nn.Linear(8, 3)).train()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    assert {id(p) for p in uninitialised_params(model)} == {id(p) for p in model[0].parameters()}
    input_effects(model, torch.randn(6, 4), target=0)  # refused at dc3f1f0d
    assert model[0].merged is False and model.training
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name]), name


class _Classifier(nn.Module):  # a module of the user's own: its parameters are watched
    def __init__(self):
        super().__init__()
        self.conv, self.head = nn.Conv2d(1, 4, 3, padding=1), nn.Sequential(nn.Flatten(), nn.Linear(4 * 6 * 6, 3))

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)))


def test_the_backdoor_terms_search_at_each_step_takes_no_fingerprint(monkeypatch):
    """BackdoorSuppressionTerm's trigger search runs at every training step with the parameters frozen: it read every
    parameter twice a step (+8-12% a step on 21M parameters); an audit's block still watches."""
    from lightning_causal.causal.engine import param_writes
    from lightning_causal.repair.backdoor import BackdoorSuppressionTerm

    calls = []
    fingerprint = param_writes._fingerprint
    monkeypatch.setattr(param_writes, "_fingerprint", lambda p: calls.append(1) or fingerprint(p))
    torch.manual_seed(0)
    model, x = _Classifier().train(), torch.rand(4, 1, 6, 6)
    term = BackdoorSuppressionTerm(None, adversarial_steps=2)
    region = torch.zeros(1, 6, 6)
    region[:, :2, :2] = 1.0
    term.regions = [region]
    rows = term.adversarial_rows(model, x, torch.tensor([0, 1, 2, 0]))
    assert rows.shape == x.shape and not torch.equal(rows, x)
    assert calls == []  # 8 at HEAD: 4 parameters, on entry and exit
    input_effects(model, x, target=0)
    assert len(calls) == 8


class _CountingMerge(nn.Module):  # merges its update in an eval-mode pass, its state a counter: refused
    def __init__(self):
        super().__init__()
        self.base, self.delta, self.merges = nn.Linear(2, 2), nn.Parameter(torch.ones(2, 2)), 0

    def forward(self, x):
        if not self.training and self.merges == 0:
            self.base.weight.data += self.delta.detach()
            self.merges += 1
        return self.base(x)


def test_a_block_for_another_model_nested_in_a_watching_block_watches_that_model():
    """param_writes' flag was one for all models: a block for another model, opened inside the callback's block for
    the trained one, read nothing and its writes went unrefused."""
    from lightning_causal.causal.engine.param_writes import param_writes_refused

    trained, other = _CountingMerge().eval(), _CountingMerge().eval()
    with pytest.raises(ValueError, match=r"`base\.weight` \(below `_CountingMerge`\)"):  # silent at HEAD
        with param_writes_refused(trained):
            with param_writes_refused(other):
                other(torch.ones(1, 2))
    with param_writes_refused(trained), param_writes_refused(trained.base):  # the same model: read once, outside
        trained.base(torch.ones(1, 2))


def test_watched_params_are_those_below_the_users_modules_each_once():
    from lightning_causal.causal.engine.param_writes import watched_params

    lib = nn.Linear(2, 2)
    user = _CountingMerge()
    user.base.weight = lib.weight  # tied with a library layer outside the user's module
    model = nn.Sequential(lib, nn.Sequential(user), nn.Linear(2, 2))
    assert list(watched_params(model)) == ["1.0.delta", "1.0.base.weight", "1.0.base.bias"]
    assert watched_params(nn.Sequential(nn.Linear(2, 2))) == {}
    assert list(watched_params(_CountingMerge())) == ["delta", "base.weight", "base.bias"]
