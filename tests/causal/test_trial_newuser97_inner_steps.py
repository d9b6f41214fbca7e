"""Models that adapt at test time by stepping an optimizer inside forward (TENT's entropy step on the BatchNorm affine
parameters, test-time training's steps on a rotation loss): an audit's passes stepped it, explained weights that moved
from pass to pass and left the model adapted to the probe and to every intervened row (and its ``.grad`` set), in
silence. The steps are put back (weights, ``.grad``, the optimizer's momentum) and a forward that keeps them is refused;
one that puts its weights back runs, per sample exactly as a hand ``do()``, on the batch refused naming the steps."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit, audit_model
from lightning_causal.causal import input_effects


def _data(n: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    return x * 1.5 + shift, ((x[:, 0] + 2 * x[:, 1]) > 0).long()  # features 0 and 1 cause the class


def _bn_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 2))
    net.train()
    x, y = _data(512, 1)  # trained on the source data: its running statistics too
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(150):
        opt.zero_grad()
        F.cross_entropy(net(x), y).backward()
        opt.step()
    net.zero_grad(set_to_none=True)
    return net


def _entropy(logits: torch.Tensor) -> torch.Tensor:
    return -(logits.softmax(-1) * logits.log_softmax(-1)).sum(-1).mean()


class _Tent(nn.Module):
    """TENT (Wang et al. 2021): one entropy step on the BatchNorm affine parameters per forward, kept."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.opt = torch.optim.SGD(net[1].parameters(), lr=0.1, momentum=0.9)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            self.opt.zero_grad()
            _entropy(self.net(x)).backward()
            self.opt.step()
        return self.net(x)


class _TTT(nn.Module):
    """Test-time training (Sun et al. 2020): steps on a rotation loss of a shared trunk, then predicts; the trained
    weights reloaded after (``restore``), per sample or on the whole batch."""

    def __init__(self, per_sample: bool) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.trunk = nn.Sequential(nn.Linear(6, 16), nn.Tanh())
        self.head, self.aux = nn.Linear(16, 2), nn.Linear(16, 3)
        self.per_sample = per_sample

    def _adapted(self, x: torch.Tensor) -> torch.Tensor:
        saved = copy.deepcopy(self.trunk.state_dict())
        opt = torch.optim.SGD(self.trunk.parameters(), lr=0.2)
        views = torch.cat([torch.roll(x, 2 * k, dims=1) for k in range(3)])
        with torch.enable_grad():
            for _ in range(2):
                opt.zero_grad()
                F.cross_entropy(self.aux(self.trunk(views)), torch.arange(3).repeat_interleave(len(x))).backward()
                opt.step()
        out = self.head(self.trunk(x))
        self.trunk.load_state_dict(saved)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_sample:
            return torch.cat([self._adapted(x[i:i + 1]) for i in range(len(x))])
        return self._adapted(x)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_tent_refused_and_left_as_found():
    tent = _Tent(_bn_net())
    x = _data(32, 2, shift=1.0)[0]
    tent(x)  # one step: the optimizer holds a momentum buffer, the weights a .grad
    tent.opt.zero_grad(set_to_none=False)
    before, momentum = _state(tent), {id(p): s["momentum_buffer"].clone() for p, s in tent.opt.state.items()}
    grads = [p.grad for p in tent.parameters()]
    values = [g.clone() for g in grads]
    with pytest.raises(ValueError, match=r"an optimizer \(SGD\) stepped inside the audit's passes and left "
                                         r"\['net.1.weight', 'net.1.bias'\] changed.*adapt first and audit"):
        input_effects(tent, x, torch.arange(6).expand(32, 6).clone(), 0.0)
    assert all(torch.equal(v, before[k]) for k, v in tent.state_dict().items())
    assert all(torch.equal(s["momentum_buffer"], momentum[id(p)]) for p, s in tent.opt.state.items())
    assert all(p.grad is g for p, g in zip(tent.parameters(), grads))
    assert all(torch.equal(g, v) for g, v in zip(grads, values))  # the Linear layers' too, which forward accumulates into


def test_tent_in_audit_model_leaves_weights():
    tent = _Tent(_bn_net())
    before = _state(tent)
    x, y = _data(64, 3, shift=1.0)
    with pytest.raises(ValueError, match="adapts at test time"):
        audit_model(tent, InputEffectAudit(ace_values=None), (x, y), probe_size=64)
    assert all(torch.equal(v, before[k]) for k, v in tent.state_dict().items())
    assert all(p.grad is None for p in tent.parameters())


def test_ttt_per_sample_runs_as_a_hand_do():
    model = _TTT(per_sample=True)
    before = _state(model)
    x = _data(8, 4, shift=1.0)[0]
    effects = input_effects(model, x, torch.arange(6).expand(8, 6).clone(), 0.0, target=0)
    with torch.no_grad():
        hand = []
        for g in range(6):
            xg = x.clone()
            xg[:, g] = 0
            hand.append(model(x)[:, 0] - model(xg)[:, 0])
    torch.testing.assert_close(effects, torch.stack(hand, 1), rtol=0, atol=1e-6)
    model.zero_grad(set_to_none=True)
    input_effects(model, x, torch.arange(6).expand(8, 6).clone(), 0.0, target=1)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())  # the inner backward's .grad put back


def test_ttt_on_the_batch_refused_naming_the_steps():
    model = _TTT(per_sample=False)
    x = _data(32, 5, shift=1.0)[0]
    with pytest.raises(ValueError, match="steps an optimizer on its parameters with its batch's loss"):
        input_effects(model, x, torch.arange(6).expand(32, 6).clone(), 0.0, target=0)


class _TentClassifier(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = _bn_net()
        self.inner = torch.optim.SGD(self.net[1].parameters(), lr=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:  # adapts at test time
            with torch.enable_grad():
                _entropy(self.net(x)).backward()
                self.inner.step()
                self.inner.zero_grad()
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.net(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_callback_refuses_tent_at_set_up_weights_untouched(tmp_path):
    x, y = _data(64, 6)
    model = _TentClassifier()
    before = _state(model)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32)
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=32)])
    with pytest.raises(MisconfigurationException, match="stepped inside the audit's passes"):
        trainer.fit(model, loader, loader)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # refused before the first step


def _page_recipe() -> str:
    page = (Path(__file__).parents[2] / "docs" / "your_model.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", page, re.S) if "def frozen_adapted" in b]
    assert len(blocks) == 1
    return blocks[0]


def test_the_pages_frozen_tent_recipe_runs_and_explains_the_adapted_model():
    ns: dict = {}
    exec(compile(_page_recipe(), "<docs/your_model.md>", "exec"), ns)  # noqa: S102 - the page's own recipe
    net = _bn_net()
    for m in net.modules():  # TENT's always-batch-statistics BatchNorm
        if isinstance(m, nn.BatchNorm1d):
            m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked = False, None, None, None
    tent = _Tent(net)
    x = _data(256, 7, shift=1.0)[0]
    for _ in range(3):
        tent(x)
    frozen = ns["frozen_adapted"](tent.net, [x])
    with torch.no_grad():  # TENT's output on its batch (train-mode statistics) is the frozen model's, to the n/(n-1)
        torch.testing.assert_close(frozen(x), tent.net(x), rtol=5e-3, atol=1e-2)  # of the running variance
    mask = torch.arange(6).expand(256, 6).clone()
    effects = input_effects(frozen, x, mask, 0.0, target=1)
    with torch.no_grad():
        hand = torch.stack([frozen(x)[:, 1] - frozen(x.masked_fill(mask == g, 0))[:, 1] for g in range(6)], 1)
    torch.testing.assert_close(effects, hand, rtol=0, atol=1e-5)
    assert set(effects.abs().mean(0).topk(2).indices.tolist()) == {0, 1}  # the features that cause the class


class _TTTLinear(nn.Module):
    """A TTT layer (Sun et al. 2024, TTT-Linear): the hidden state W takes a gradient step on ||W k_t - v_t||^2 at
    every position, inside forward; W is forward's tensor, no parameter."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(2)
        self.k, self.v, self.q, self.head = nn.Linear(3, 4), nn.Linear(3, 4), nn.Linear(3, 4), nn.Linear(24, 2)
        self.w0 = nn.Parameter(0.1 * torch.randn(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w, outs = self.w0.expand(len(x), 4, 4), []
        for t in range(x.shape[1]):
            k, v = self.k(x[:, t]), self.v(x[:, t])
            w = w - 0.1 * 2 * torch.einsum("ni,nj->nij", torch.einsum("nij,nj->ni", w, k) - v, k)
            outs.append(torch.einsum("nij,nj->ni", w, self.q(x[:, t])))
        return self.head(torch.cat(outs, 1))


def test_ttt_linear_layer_effects_are_a_hand_do_at_every_chunk_size():
    model = _TTTLinear()
    x = torch.randn(24, 6, 3, generator=torch.Generator().manual_seed(8))
    mask = torch.arange(18).view(1, 6, 3).expand(24, 6, 3).clone()
    effects = input_effects(model, x, mask, 0.0, target=0)
    with torch.no_grad():
        hand = torch.stack([model(x)[:, 0] - model(x.masked_fill(mask == g, 0))[:, 0] for g in range(18)], 1)
    torch.testing.assert_close(effects, hand, rtol=0, atol=1e-5)
    for rows in (1, 7):
        torch.testing.assert_close(input_effects(model, x, mask, 0.0, target=0, max_batch_size=rows), effects,
                                   rtol=0, atol=1e-5)
