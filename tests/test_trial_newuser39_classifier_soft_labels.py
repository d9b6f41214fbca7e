"""LightningClassifier on soft labels [N, C] (a mixup collate_fn): its accuracy compared the predicted
classes [N] with the labels [N, C] by broadcasting, an error where N != C ("The size of tensor a (32)
must match the size of tensor b (10)") and a wrong number where N == C (a batch of 10 with 10 classes:
0.0 where the argmax agreed on 2 of 10). It trains with the cross-entropy against the class probabilities
and logs the loss only, as CausalRepairModule's steps do; class-index labels keep their accuracy."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.models import LightningClassifier


def _mixup(x, y):
    t = F.one_hot(y, 10).float()
    return 0.7 * x + 0.3 * x.flip(0), 0.7 * t + 0.3 * t.flip(0)


def _logged(model, step, batch):
    logs = {}
    model.log = lambda name, value, **kwargs: logs.__setitem__(name, float(value))  # what the step logs, no Trainer
    loss = step(batch, 0)
    return loss, logs


@pytest.mark.parametrize("n", [10, 32], ids=["batch_of_as_many_rows_as_classes", "batch_of_32"])
def test_soft_label_batches_train_on_their_cross_entropy_and_log_no_accuracy(n):
    torch.manual_seed(0)
    model = LightningClassifier(nn.Linear(8, 10))
    x, t = _mixup(torch.randn(n, 8), torch.randint(0, 10, (n,)))
    loss, logs = _logged(model, model.training_step, (x, t))
    assert set(logs) == {"train_loss"} and float(loss) == pytest.approx(float(F.cross_entropy(model(x), t)))


def test_class_index_labels_keep_their_accuracy():
    torch.manual_seed(0)
    model = LightningClassifier(nn.Linear(8, 10))
    x, y = torch.randn(10, 8), torch.randint(0, 10, (10,))
    _, logs = _logged(model, model.validation_step, (x, y))
    with torch.no_grad():
        assert logs["val_acc"] == float((model(x).argmax(1) == y).float().mean())


def test_the_classifier_says_it_is_single_label_so_soft_labels_are_read_without_a_guess():
    # review: it called F.cross_entropy without holding a loss, so label_task found nothing and the audits read its
    # mixup targets as soft labels on a guess, warning that they might be a regression's proportions
    import warnings

    from lightning_causal.audits.label_task import class_indices, label_task

    model = LightningClassifier(nn.Linear(8, 10))
    _, t = _mixup(torch.randn(6, 8), torch.tensor([0, 3, 3, 9, 1, 2]))
    assert label_task(model) == "multiclass"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(class_indices(t, model), torch.tensor([0, 3, 3, 9, 1, 2]))
    assert sum(p.numel() for p in model.parameters()) == 90 and set(model.state_dict()) == {"model.weight", "model.bias"}
