"""Class names given once to ``CausalAuditCallback(class_names=...)`` or ``audit_model(class_names=...)`` reach
``BackdoorAudit`` after its constructor, which alone refused two names made one scalar tag (newuser32 trial, a
1000-class model whose names hold slashes and spaces): ``"hot dog"`` and ``"hot_dog"`` both logged
``anomaly_index/hot_dog``, one class's series silently overwritten by the other's (3 classes, 2 scalars). The
audit checks its names again when it is validated, before any pass."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import BackdoorAudit, CausalAuditCallback
from lightning_causal.callbacks.posthoc import audit_model
from tests.helpers.lightning import classifier, loaders, trainer

CLASH = "'hot dog' and 'hot_dog' both give the scalar tag anomaly_index/hot_dog"


def test_audit_model_refuses_shared_class_names_that_make_one_tag() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    with pytest.raises(ValueError, match=CLASH):
        audit_model(model, BackdoorAudit(steps=1), torch.rand(8, 4), class_names=["hot dog", "hot_dog", "cat"])
    result, = audit_model(model, BackdoorAudit(steps=1), torch.rand(8, 4), class_names=["hot dog", "hotdog", "cat"])
    assert sorted(k for k in result.scalars if k.startswith("anomaly_index/")) == [
        "anomaly_index/cat", "anomaly_index/hot_dog", "anomaly_index/hotdog"]  # one series per class


def test_the_callback_refuses_them_at_set_up(tmp_path) -> None:
    names = ["hot dog", "hot_dog"] + [f"digit {d}" for d in range(2, 10)]
    callback = CausalAuditCallback([BackdoorAudit(steps=1, max_samples=4)], probe_size=4, class_names=names)
    with pytest.raises(MisconfigurationException, match=CLASH):
        trainer(tmp_path, max_epochs=1, callbacks=[callback], limit_train_batches=1, limit_val_batches=1).fit(
            classifier(), *loaders())
