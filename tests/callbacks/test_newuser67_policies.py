"""docs/your_model.md, "Policies: actor-critic, Gaussian and recurrent": the page's snippet runs, its audits give the
effects a set-one-feature-and-rerun loop gives, and an actor-critic trained with manual optimisation, rollouts from a
NumPy environment and actions drawn from a torch.Generator ends bit-identical with and without the callback."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.audits import Probe

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


@pytest.fixture(scope="module")
def snippet() -> dict:
    code = re.search(r"<!-- policies -->\n```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    namespace: dict = {}
    torch.manual_seed(0)
    exec(compile(code, "<your_model.md policies>", "exec"), namespace)  # noqa: S102 - the docs' own example
    return namespace


def _by_hand(f, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """f_t(x) - f_t(x | do(x_j := 0)) for each column j, one rerun a column."""
    with torch.no_grad():
        base = f(x).gather(1, target[:, None])[:, 0]
        cols = []
        for j in range(x.shape[1]):
            xj = x.clone()
            xj[:, j] = 0.0
            cols.append(base - f(xj).gather(1, target[:, None])[:, 0])
    return torch.stack(cols, 1)


def test_actor_critic_audits_match_a_rerun_loop(snippet: dict) -> None:
    model = snippet["ActorCritic"]().eval()
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    audits = {a.name: a for a in snippet["actor_critic_audits"]}
    policy = audits["policy"].run(model, Probe(x)).maps["effect"]
    greedy = model(x)[0].argmax(1)
    torch.testing.assert_close(policy, _by_hand(lambda z: model(z)[0], x, greedy), atol=1e-5, rtol=0)
    value = audits["value"].run(model, Probe(x)).maps["effect"]
    torch.testing.assert_close(value, _by_hand(lambda z: model(z)[1][:, None], x, torch.zeros(64, dtype=torch.long)),
                               atol=1e-5, rtol=0)
    for name in ("unit_importance", "sobol_right", "counterfactual"):
        assert audits[name].run(model, Probe(x)).scalars  # they run on the tuple's policy head


def test_gaussian_audits_explain_each_force_without_a_warning(snippet: dict) -> None:
    model = snippet["GaussianPolicy"]().eval()
    x = torch.randn(64, 7, generator=torch.Generator().manual_seed(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # target=k: nothing to warn of
        results = [audit.run(model, Probe(x)) for audit in snippet["gaussian_audits"]]
    for k in (0, 1):
        torch.testing.assert_close(results[k].maps["effect"],
                                   _by_hand(lambda z: model(z).mean, x, torch.full((64,), k)), atol=1e-5, rtol=0)
    assert set(results[2].scalars) >= {"S/px", "ST/noise"}


def test_recurrent_callback_reads_rollout_batches(snippet: dict) -> None:
    callback, model = snippet["recurrent"], snippet["RecurrentPolicy"]().eval()
    obs, actions = torch.randn(16, 6, 5), torch.randint(0, 4, (16,))
    inputs, labels, args = callback.unpack_batch((obs, actions, torch.ones(16), torch.ones(16)))
    assert inputs is obs and labels is actions and args is None
    steps = callback.audits[1].run(model, Probe(obs)).vectors["mean_abs_effect"]
    assert steps.shape == (6,)


class _Walk:
    """A NumPy environment with its own generator: 5 observations, a reward for the action that matches a sign."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.RandomState(seed)
        self.s = self.rng.normal(size=(8, 5)).astype(np.float32)

    def step(self, action: np.ndarray) -> np.ndarray:
        reward = (action == (self.s[:, 2] > 0)).astype(np.float32)
        self.s = (0.9 * self.s + self.rng.normal(scale=0.3, size=self.s.shape)).astype(np.float32)
        return reward


def _fit(snippet: dict, audited: bool):
    net_class = snippet["ActorCritic"]

    class A2C(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.net, self.env, self.gen = net_class(), _Walk(0), torch.Generator().manual_seed(0)

        def forward(self, obs):
            return self.net(obs)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            obs = torch.as_tensor(self.env.s)
            logits, value = self(obs)
            action = torch.multinomial(logits.softmax(1).detach(), 1, generator=self.gen)[:, 0]
            reward = torch.as_tensor(self.env.step(action.numpy()))
            log_prob = torch.log_softmax(logits, 1).gather(1, action[:, None])[:, 0]
            loss = -(log_prob * (reward - value).detach()).mean() + 0.5 * ((reward - value) ** 2).mean()
            opt.zero_grad()
            self.manual_backward(loss)
            opt.step()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=1e-2)

    torch.manual_seed(0)
    module = A2C()
    probe = torch.as_tensor(np.random.RandomState(7).normal(size=(32, 5)).astype(np.float32))  # not the env's generator
    callbacks = [CausalAuditCallback([InputEffectAudit(output=0, name="policy"), InputEffectAudit(output=1, name="value"),
                                      UnitImportanceAudit(["net.trunk.1"], output=0)], probe=probe)] if audited else []
    trainer = pl.Trainer(max_epochs=2, limit_train_batches=3, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
    trainer.fit(module, DataLoader(range(3), batch_size=1))
    return module


def test_audits_leave_a_manually_optimised_policy_and_its_environment_as_they_were(snippet: dict, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the callback's reports
    plain, audited = _fit(snippet, False), _fit(snippet, True)
    for (name, a), (_, b) in zip(plain.state_dict().items(), audited.state_dict().items()):
        assert torch.equal(a, b), name
    assert np.array_equal(plain.env.s, audited.env.s)
    assert plain.env.rng.get_state()[2] == audited.env.rng.get_state()[2]
    assert np.array_equal(plain.env.rng.get_state()[1], audited.env.rng.get_state()[1])
    assert torch.equal(plain.gen.get_state(), audited.gen.get_state())


def test_a_tuple_without_output_stops_the_fit_at_set_up(snippet: dict, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    net = snippet["ActorCritic"]()

    class Module(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, obs):
            return self.net(obs)

        def training_step(self, batch, batch_idx):
            return self(batch)[1].mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.0)

    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=[CausalAuditCallback([InputEffectAudit()], probe=torch.randn(8, 5))])
    with pytest.raises(MisconfigurationException, match=r"tuple of 2 items.*`output=0`"):
        trainer.fit(Module(), DataLoader(torch.randn(4, 5), batch_size=2))
