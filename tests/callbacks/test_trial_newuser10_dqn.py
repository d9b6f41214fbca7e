"""A DQN as Lightning's example writes it (newuser10 trial): a Q-network, a replay buffer served by an
IterableDataset of (states, actions, rewards, dones, next_states), epsilon-greedy acting inside
``training_step`` from NumPy's global generator, a target network synced every few steps, no validation data.

- The callback read its probe from the training stream and refused it as 'Expected `probe` data with indexed
  samples ...; pass the probe as tensors or a batch (`probe=`) for iterable datasets', naming a `probe` the user
  never gave and not where it had looked: it now names the train_dataloader and why (no validation data).
- The buffer's ``sample()`` returns NumPy arrays (as Lightning's example): such a batch as ``probe=`` was refused
  ('got a tuple of [ndarray, ...]'); its arrays are now read as tensors, as a DataLoader converts them.
- The audits leave the fit bit-identical (weights, target network, environment and NumPy global RNG, buffer),
  and one input effect and one unit effect of the Q-network equal a brute-force loop.
"""

from collections import deque

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, IterableDataset

from lightning_causal import (
    CausalAuditCallback,
    InputEffectAudit,
    LayerMapAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from tests.helpers.lightning import quick_trainer


class _Env:
    """A drifting 4-dimensional state with its own RandomState; done after 8 steps or when |state_0| > 1."""

    def __init__(self) -> None:
        self.rng = np.random.RandomState(0)
        self.reset()

    def reset(self) -> np.ndarray:
        self.state, self.t = self.rng.uniform(-0.5, 0.5, 4).astype(np.float32), 0
        return self.state

    def step(self, action: int):
        self.state = (self.state + (0.1 if action else -0.1) + self.rng.normal(0, 0.05, 4)).astype(np.float32)
        self.t += 1
        return self.state, float(self.state[0] > 0), bool(abs(self.state[0]) > 1 or self.t >= 8)


class _Replay(IterableDataset):
    def __init__(self, buffer: deque, size: int) -> None:
        self.buffer, self.size = buffer, size

    def __iter__(self):
        for i in np.random.choice(len(self.buffer), self.size, replace=False):  # NumPy's global generator, as the example
            yield self.buffer[i]


class _DQN(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.target_net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        self.env, self.buffer = _Env(), deque(maxlen=200)
        self.state = self.env.reset()
        for _ in range(64):
            self.play(1.0)

    def forward(self, x):
        return self.net(x)

    @torch.no_grad()
    def play(self, epsilon: float) -> None:
        if np.random.random() < epsilon:
            action = int(np.random.randint(2))
        else:
            action = int(self.net(torch.as_tensor(self.state)[None]).argmax())
        new, reward, done = self.env.step(action)
        self.buffer.append((self.state.copy(), action, np.float32(reward), done, new.copy()))
        self.state = self.env.reset() if done else new

    def training_step(self, batch, batch_idx):
        states, actions, rewards, dones, next_states = batch
        self.play(max(0.1, 1.0 - self.global_step / 20))
        q = self.net(states).gather(1, actions.long()[:, None])[:, 0]
        with torch.no_grad():
            target = rewards + 0.9 * self.target_net(next_states).max(1)[0].masked_fill(dones, 0.0)
        if self.global_step % 3 == 0:
            self.target_net.load_state_dict(self.net.state_dict())
        return nn.functional.mse_loss(q, target)

    def configure_optimizers(self):
        return torch.optim.Adam(self.net.parameters(), lr=1e-2)

    def train_dataloader(self):
        return DataLoader(_Replay(self.buffer, 32), batch_size=8)


def _states(module: _DQN, n: int = 32) -> torch.Tensor:
    return torch.as_tensor(np.stack([e[0] for e in list(module.buffer)[:n]]))  # draws nothing


def test_a_replay_stream_without_validation_data_is_refused_naming_where_the_probe_was_read():
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)])
    with pytest.raises(MisconfigurationException, match=r"probe from the train_dataloader \(this fit validates on no data.*"
                       r"_Replay is an IterableDataset.*`probe=`.*unpack_batch=lambda batch: \(batch\[0\], None, None\)"):
        quick_trainer(callbacks=[cb], max_epochs=1).fit(_DQN())


def test_a_replay_buffers_numpy_sample_is_read_as_a_batch_of_tensors():
    module = _DQN()
    batch = tuple(np.stack(column) for column in zip(*list(module.buffer)[:6]))  # (states, actions, rewards, dones, next)
    probe = probe_from(batch, 4, unpack_batch=lambda b: (b[0], b[1], None))
    assert torch.equal(probe.inputs, torch.as_tensor(batch[0][:4])) and probe.inputs.dtype == torch.float32
    assert torch.equal(probe.labels, torch.as_tensor(batch[1][:4]))
    assert torch.equal(probe_from(batch[0], 3).inputs, torch.as_tensor(batch[0][:3]))  # the states array alone
    with pytest.raises(MisconfigurationException, match=r"a tuple of 5 items .*`unpack_batch=`"):
        probe_from(batch, 4)  # read as tensors, then the usual message for a 5-tuple


def _fit(audited: bool, report_dir) -> dict:
    pl.seed_everything(0)
    module = _DQN()
    audits = [InputEffectAudit(ace_values=None), InputEffectAudit(target=1, ace_values=None, name="right"),
              UnitImportanceAudit(["net.0"], unit_dim=-1), LayerMapAudit(),
              CounterfactualAudit(towards="runner_up", max_samples=4, settings=CounterfactualSettings(steps=20, polish=0))]
    callbacks = [CausalAuditCallback(audits, probe=_states(module), probe_size=32, report_dir=report_dir)] if audited else []
    quick_trainer(callbacks=callbacks, max_epochs=3).fit(module)
    if audited:
        assert callbacks[0].audited_epochs == [0, 1, 2]
        assert callbacks[0].last_results["layer_map"].graphs["layer_map"]["layers"] == ["net.0", "net.2"]  # no target_net
    return {"net": [p.detach().clone() for p in module.net.parameters()],
            "target": [p.detach().clone() for p in module.target_net.parameters()],
            "env": module.env.rng.get_state()[1].copy(), "np": np.random.get_state()[1].copy(),
            "torch": torch.get_rng_state(), "buffer": [(e[0].copy(), e[1], e[3]) for e in module.buffer]}


def test_the_audits_leave_a_dqn_fit_bit_identical(tmp_path):
    plain, audited = _fit(False, None), _fit(True, tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(plain["net"], audited["net"]))
    assert all(torch.equal(a, b) for a, b in zip(plain["target"], audited["target"]))
    assert np.array_equal(plain["env"], audited["env"]) and np.array_equal(plain["np"], audited["np"])
    assert torch.equal(plain["torch"], audited["torch"])
    assert len(plain["buffer"]) == len(audited["buffer"])
    assert all(np.array_equal(a[0], b[0]) and a[1:] == b[1:] for a, b in zip(plain["buffer"], audited["buffer"]))


def test_q_value_effects_equal_a_brute_force_loop():
    module = _DQN().eval()
    x = _states(module) * 4
    q = module(x).detach()
    greedy = q.argmax(1)
    right = InputEffectAudit(target=1, ace_values=None).run(module, Probe(x)).vectors["mean_effect"]
    units = UnitImportanceAudit(["net.0"], unit_dim=-1).run(module, Probe(x)).vectors["importance/net.0"]
    for j in range(4):  # do(state_j := 0), the Q-value of action 1
        xj = x.clone()
        xj[:, j] = 0
        assert torch.allclose(right[j], (q[:, 1] - module(xj).detach()[:, 1]).mean(), atol=1e-6)
    h = module.net[0](x).detach()
    for u in range(8):  # do(h_u := 0) in the first layer, the greedy action's Q-value
        hu = h.clone()
        hu[:, u] = 0
        qu = module.net[2](torch.relu(hu)).detach()
        assert torch.allclose(units[u], (q.gather(1, greedy[:, None]) - qu.gather(1, greedy[:, None])).abs().mean(), atol=1e-6)


class _ActingDQN(_DQN):
    def forward(self, x):  # the policy: one action per state
        return self.net(x).argmax(1)


def test_a_forward_returning_actions_is_refused_naming_what_the_audits_explain(tmp_path):
    """A policy's forward returning q.argmax(1) stopped the fit on torch's 'mean(): could not infer output dtype'."""
    module = _ActingDQN()
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe=_states(module), report_dir=tmp_path)
    with pytest.raises(MisconfigurationException, match=r"'input_effect' is misconfigured: the output it explains is "
                       r"torch.int64 \[32\] .*real-valued scores .*_ActingDQN a property `audited_module`.*`output=`"):
        quick_trainer(callbacks=[cb], max_epochs=1).fit(module)
