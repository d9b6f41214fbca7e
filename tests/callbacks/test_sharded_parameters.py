"""CausalAuditCallback refuses, at set-up, a fit of several processes whose strategy shards the parameters
(the processes' forward passes would not pair up: a hang), and takes one process of it, or DDP."""

from types import SimpleNamespace

import pytest
from lightning.pytorch.strategies import (
    DDPStrategy,
    DeepSpeedStrategy,
    FSDPStrategy,
    ModelParallelStrategy,
)
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.callbacks._fit_checks import check_unsharded_parameters


def _deepspeed(stage):
    strategy = object.__new__(DeepSpeedStrategy)  # deepspeed itself is not installed: its config is all that is read
    strategy.config = {"zero_optimization": {"stage": stage}}
    return strategy


# ModelParallelStrategy() refuses torch < 2.4 (the package takes torch 2.2): the check reads only the strategy's type
@pytest.mark.parametrize("strategy", [FSDPStrategy(), object.__new__(ModelParallelStrategy), _deepspeed(3)],
                         ids=["fsdp", "model_parallel", "deepspeed_stage_3"])
def test_a_strategy_sharding_the_parameters_across_processes_is_refused_naming_it(strategy):
    with pytest.raises(MisconfigurationException, match=rf"under {type(strategy).__name__} across 2 processes.*would hang"):
        check_unsharded_parameters(SimpleNamespace(world_size=2, strategy=strategy))


@pytest.mark.parametrize("strategy", [DDPStrategy(), _deepspeed(2)], ids=["ddp", "deepspeed_stage_2"])
def test_strategies_whose_processes_hold_every_parameter_are_taken(strategy):
    check_unsharded_parameters(SimpleNamespace(world_size=2, strategy=strategy))


def test_one_process_of_fsdp_is_taken():
    check_unsharded_parameters(SimpleNamespace(world_size=1, strategy=FSDPStrategy()))


def test_the_callback_refuses_it_at_set_up(monkeypatch):
    import lightning.pytorch as pl

    from lightning_causal import CausalAuditCallback, InputEffectAudit
    from tests.helpers.lightning import SgdMlp

    callback = CausalAuditCallback([InputEffectAudit()])
    trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, callbacks=[callback], enable_progress_bar=False)
    monkeypatch.setattr(pl.Trainer, "world_size", property(lambda self: 2))
    monkeypatch.setattr(pl.Trainer, "strategy", property(lambda self: FSDPStrategy()))
    with pytest.raises(MisconfigurationException, match="under FSDPStrategy across 2 processes"):
        callback.setup(trainer, SgdMlp(), "fit")
