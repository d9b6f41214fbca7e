"""Monitoring trial, causal pruning: a ``target`` the model cannot explain is refused when the
pruning method is made, not at the first pruning epoch inside ``ModelPruning``."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.callbacks.pruning import causal_pruning_fn
from lightning_causal.models import MLP

X = torch.rand(10, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("target", "match"), [
    (5, r"`target` to be in \[0, 1\] but got \[5\]"),
    (torch.tensor([0, 1, 0]), r"`target` to have 1 or 10 entries but got 3"),
    (torch.tensor([0.0]), r"`target` to hold integer class indices"),
])
def test_a_target_the_model_cannot_explain_is_refused_at_once(target, match):
    with pytest.raises(MisconfigurationException, match=match):
        causal_pruning_fn(MLP(4, (8,)), X, ["net.0"], target=target)


def test_a_valid_target_prunes_as_before():
    model = MLP(4, (8,))
    method = causal_pruning_fn(model, X, ["net.0"], target=torch.arange(10) % 2)
    method.prune(3)
    assert int((model.net[0].weight_mask.sum(1) == 0).sum()) == 3


def _prune_and_keep(tmp_path, pruning_first: bool):
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import ModelPruning

    from lightning_causal import AuditModelCheckpoint, CausalAuditCallback, UnitImportanceAudit
    from tests.helpers.lightning import classifier, loaders, trainer

    module = classifier()
    probe = loaders()[1].dataset.tensors[0][:16]
    method = causal_pruning_fn(module, probe, ["model.conv2"])
    pruning = ModelPruning(method, parameters_to_prune=method.parameters_to_prune, amount=0.5, make_pruning_permanent=False)
    audit = CausalAuditCallback([UnitImportanceAudit(["model.conv2"], name="units")], probe=probe, report_dir=tmp_path / "r")
    ckpt = AuditModelCheckpoint("causal/units/model.conv2/top1_importance", tmp_path / "c", mode="max")
    callbacks = [pruning, audit, ckpt] if pruning_first else [audit, pruning, ckpt]
    trainer(tmp_path, max_epochs=1, callbacks=callbacks, enable_checkpointing=True).fit(module, *loaders())
    assert isinstance(module, pl.LightningModule)
    return module, audit, ckpt


def test_pruning_listed_after_the_audit_warns_that_checkpoints_hold_unaudited_weights(tmp_path):
    with pytest.warns(UserWarning, match=r"ModelPruning comes after the CausalAuditCallback.*list ModelPruning before"):
        module, audit, _ = _prune_and_keep(tmp_path, pruning_first=False)
    # what the warning is about: the saved weights lack filters that the audit saw acting on the logits
    pruned = module.model.conv2.weight_mask.flatten(1).sum(1) == 0
    assert int(pruned.sum()) == 4
    assert bool((audit.last_results["units"].vectors["importance/model.conv2"][pruned] > 0).any())


def test_pruning_listed_first_saves_the_audited_pruned_weights(tmp_path):
    import warnings

    from lightning_causal.audits import Probe, UnitImportanceAudit

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message=r"(?!.*ModelPruning comes after)")
        module, audit, ckpt = _prune_and_keep(tmp_path, pruning_first=True)
    importance = audit.last_results["units"].vectors["importance/model.conv2"]
    assert int((importance == 0).sum()) == 4  # the audit saw the pruned filters
    saved = torch.load(ckpt.best_model_path, weights_only=True)["state_dict"]
    module.model.conv2.weight_orig.data.copy_(saved["model.conv2.weight_orig"])
    assert torch.equal(saved["model.conv2.weight_mask"], module.model.conv2.weight_mask)
    rerun = UnitImportanceAudit(["model.conv2"]).run(module.eval(), Probe(audit.probe.inputs))
    assert rerun.scalars["model.conv2/top1_importance"] == pytest.approx(float(ckpt.best_model_score), rel=1e-5)
