"""The repair terms' per-step plumbing: what a step of BackdoorSuppressionTerm reads back from the device (its parts
were three floats, its balanced unlearning a boolean selection, its targets tensors of host data, every step), the
task a CausalRepairModule hands its terms (one hand-over, RepairTerm.take_task, for the backdoor and the fairness term
and a term of one's own; the backdoor term looked the module-level registry up at every step of soft labels), and
``RepairTerm.makes_own_rows`` (a term of one's own refused as BackdoorSuppressionTerm is, beside other inputs).

Host reads are counted by a dispatch mode on the CPU: ``aten._local_scalar_dense`` (``float(t)``, ``bool(t)``,
``t.item()``), ``aten.nonzero`` and a boolean-mask index (a shape the host must learn), ``aten.lift_fresh`` (a tensor
of Python data: on an accelerator, a host-to-device copy that waits for it). On a GPU each is a synchronisation."""

import collections
import copy
import pickle
import traceback
import warnings

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.nn import functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader

import lightning_causal.audits.label_task as label_task_module
import lightning_causal.repair.backdoor_parts as backdoor_parts
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.module import CausalRepairModule
from lightning_causal.repair.train_inputs import one_input_only
from tests.helpers.lightning import quick_trainer
from tests.helpers.multimodal import ImageTab

_READS = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.lift_fresh.default",
          "aten.masked_select.default"}


class _HostReads(TorchDispatchMode):
    """Counts the ops that read the device's data on the host (or copy host data to it), by package file and line."""

    def __init__(self) -> None:
        super().__init__()
        self.reads: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        masked = name == "aten.index.Tensor" and any(i is not None and i.dtype == torch.bool for i in args[1])
        if name in _READS or masked:
            frames = [f for f in traceback.extract_stack() if "lightning_causal" in f.filename]
            where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
            self.reads[(name, where)] += 1
        return func(*args, **(kwargs or {}))


def _image_case():
    """A small MLP on 8x8 images, two triggers of different targets (1 and 3), 12 rows whose labels include both."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 4))
    corner, other = torch.zeros(1, 8, 8), torch.zeros(1, 8, 8)
    corner[:, -2:, -2:] = 1.0
    other[:, :2, :2] = 1.0
    triggers = [Trigger(corner, torch.ones(1, 8, 8), target=1), Trigger(other, torch.ones(1, 8, 8), target=3)]
    x, y = torch.rand(12, 1, 8, 8), torch.arange(12) % 4
    return model, triggers, x, y


def _two_trigger_term(model, triggers, **options):
    term = BackdoorSuppressionTerm(triggers[0], **options)
    term.setup(model)
    term.triggers = list(triggers)  # several suppressed triggers, as trigger=None's flagged classes
    return term


def _reads(fn) -> collections.Counter:
    fn()  # the first call checks the outputs are logits (once)
    with _HostReads() as mode:
        fn()
    return mode.reads


def test_a_backdoor_step_reads_nothing_back_from_the_device():
    # before: float() of each of the three parts, own.any() and ce[own] of the balanced unlearning, invariant.any() of
    # the consistency, and the targets built from Python lists (host-to-device copies): 8-9 host reads a step
    model, triggers, x, y = _image_case()
    for augment in (None, "mixup+shift"):
        term = _two_trigger_term(model, triggers, augment=augment, distill_weight=3.0, balance=True)
        assert _reads(lambda term=term: term.loss(model, x, y)) == {}, augment


def test_soft_labels_are_checked_with_one_read_and_still_refused_where_they_are_no_distribution():
    model, triggers, x, y = _image_case()
    term = _two_trigger_term(model, triggers, augment=None, distill_weight=3.0)
    CausalRepairModule(model, [term], task_loss=nn.CrossEntropyLoss())  # says: one class per sample
    soft = 0.7 * F.one_hot(y, 4).float() + 0.3 * F.one_hot((y + 1) % 4, 4).float()
    reads = _reads(lambda: term.loss(model, x, soft))
    assert sum(reads.values()) == 1 and all(where.startswith(("label_task.py", "state.py")) for _, where in reads)  # 2 before; state.rows_sum_to_one reads it
    assert torch.equal(term.loss(model, x, soft), term.loss(model, x, y))  # each row's largest class
    with pytest.raises(ValueError, match=r"one class index per sample"):  # checked at every step, not the first only
        term.loss(model, x, soft * 1.5)


def test_the_parts_are_floats_when_read_and_logged_unread():
    model, triggers, x, y = _image_case()
    term = _two_trigger_term(model, triggers, augment=None, distill_weight=3.0, name="bd")
    repair = CausalRepairModule(model, [term], task_loss=nn.CrossEntropyLoss())
    reads = _reads(lambda: repair.objective((x, y)))
    assert [where for _, where in reads] == [next(w for _, w in reads if w.startswith("objective.py"))]  # the total's check
    assert sum(reads.values()) == 1  # before: 5 more (the parts as floats, then as tensors again)
    total, logs = repair.objective((x, y))
    parts = term.last_parts
    assert isinstance(parts, backdoor_parts.StepParts) and sorted(parts) == ["distill", "path", "unlearn"]
    assert all(type(parts[k]) is float for k in parts)
    for k in parts:
        logged = logs[f"repair/bd/{k}"]  # the very tensor the step computed (unread), not a float made a tensor again
        assert logged.data_ptr() == parts.tensors[k].data_ptr() and float(logged) == parts[k]
    # the parts by hand: unlearning of the stamped rows (trigger i mod 2), path and consistency at the start (0)
    with torch.no_grad():
        rows = torch.arange(12) % 2
        stamped = torch.stack([t.apply(x) for t in triggers])[rows, torch.arange(12)]
        ce = F.cross_entropy(model(stamped), y, reduction="none")
        targets = torch.tensor([1, 3])[rows]
        own = y == targets
        unlearn = ce.mean() + ce[own].mean()
    assert parts["unlearn"] == pytest.approx(float(unlearn), rel=1e-6)
    assert parts["distill"] == pytest.approx(0.0, abs=1e-7)
    assert float(total.detach()) == pytest.approx(float(logs["repair/task_loss"]) + (
        0.1 * parts["unlearn"] + 3.0 * parts["path"] + 3.0 * parts["distill"]), rel=1e-6)


def test_balanced_unlearning_without_rows_of_the_target_label_adds_nothing():
    model, triggers, x, _ = _image_case()
    term = BackdoorSuppressionTerm(triggers[0], augment=None, distill_weight=0.0, path_weight=0.0, unlearn_weight=1.0)
    y = torch.zeros(12, dtype=torch.long)  # no row of class 1, the target
    loss = term.loss(model, x, y)
    with torch.no_grad():
        expected = F.cross_entropy(model(triggers[0].apply(x)), y)
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-6) and term.last_parts["unlearn"] == pytest.approx(float(expected), rel=1e-6)


class _TaskReader(RepairTerm):
    """A term of one's own that reads the labels by the task its repair module hands over."""

    def loss(self, model, x, y):
        self.seen = self.task_of(model)
        return model(x).sum() * 0.0


def test_one_hand_over_gives_every_term_the_networks_task():
    net = nn.Linear(3, 2)
    own, fair = _TaskReader(), CounterfactualFairnessTerm(AttributeFlip(0), 0)
    assert own.task_of(net) is None and fair.task_of(None) is None  # nothing handed, the network says nothing
    CausalRepairModule(net, [own, fair], task_loss=nn.MSELoss())
    assert own.task_of(nn.Linear(3, 2)) == fair.task_of(None) == "regression"  # handed: whatever model a loss gets
    first = CausalRepairModule(net, [own, fair], task_loss=nn.BCEWithLogitsLoss())
    assert own.task_of(net) == "multilabel"
    copied = copy.deepcopy(first)
    assert copied.terms[0].task_of(copied.model) == "multilabel"
    CausalRepairModule(net, [own, fair], task_loss=nn.CrossEntropyLoss())  # built later, not fitted
    x = torch.cat([torch.tensor([[0.0], [1.0], [0.0], [1.0]]), torch.randn(4, 2)], 1)  # column 0 binary: flipped
    data = DataLoader(torch.utils.data.TensorDataset(x, torch.tensor([[0.0, 1.0], [1.0, 0.0]] * 2)), batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # multi-hot labels beside the fairness term's softmax: warned of
        quick_trainer(max_steps=1, num_sanity_val_steps=0).fit(first, data)
    assert own.seen == fair.task_of(None) == "multilabel"  # the fitted module's, handed again when its fit started


def test_a_soft_label_step_asks_the_module_level_registry_nothing(monkeypatch):
    # the backdoor term looked the stated task up (label_task.stated_task) at every step of soft labels
    class Counting(type(label_task_module._STATED)):
        gets = 0

        def get(self, key, default=None):
            Counting.gets += 1
            return super().get(key, default)

    model, triggers, x, y = _image_case()
    term = _two_trigger_term(model, triggers, augment=None, distill_weight=0.0)
    CausalRepairModule(model, [term], task_loss=nn.CrossEntropyLoss())
    stated = Counting()
    stated.update(label_task_module._STATED)
    monkeypatch.setattr(label_task_module, "_STATED", stated)
    soft = F.one_hot(y, 4).float() * 0.9 + 0.025
    for _ in range(3):
        term.loss(model, x, soft)
    assert Counting.gets == 0


def test_a_term_used_alone_reads_its_models_task_once_and_pickles():
    model, triggers, x, y = _image_case()
    model.hparams = {"task": "multilabel"}
    term = BackdoorSuppressionTerm(triggers[0], augment=None, distill_weight=0.0)
    with pytest.raises(ValueError, match=r"the model says it is multilabel"):
        term.loss(model, x, F.one_hot(y, 4).float() * 0.9 + 0.025)
    fair = CounterfactualFairnessTerm(AttributeFlip(0), 0)
    net = nn.Linear(3, 2)
    net.hparams = {"task": "regression"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fair.loss(net, torch.cat([torch.tensor([[0.0], [1.0], [0.0], [1.0]]), torch.randn(4, 2)], 1), torch.randn(4) * 10)
    assert fair.task_of(net) == "regression" and "_repair_tasks_read" in fair.__dict__
    for again in (pickle.loads(pickle.dumps(fair)), pickle.loads(pickle.dumps(term))):
        assert "_repair_tasks_read" not in again.__dict__


class _OwnRows(RepairTerm):
    """A term of one's own whose loss makes rows of its own (noisy copies of the batch)."""

    makes_own_rows = True

    def loss(self, model, x, y):
        return model(torch.cat([x, x + 0.1 * torch.randn_like(x)])).pow(2).mean()


def test_a_term_of_ones_own_that_makes_rows_is_refused_beside_other_inputs():
    assert one_input_only(_OwnRows()) is not None and one_input_only(_TaskReader()) is None
    with pytest.raises(MisconfigurationException, match=r"term 'own_rows' \(_OwnRows\) cannot: the rows its loss makes .*"
                                                        r"rows of their own"):
        CausalRepairModule(ImageTab(), [_OwnRows()], explain="tab")
    CausalRepairModule(ImageTab(), [_TaskReader()], explain="tab")  # a term that makes no rows: accepted


def test_a_term_of_ones_own_that_makes_rows_is_refused_beside_forward_arguments_at_the_fits_start():
    g = torch.Generator().manual_seed(0)
    pairs = [((torch.rand(1, 8, 8, generator=g), torch.randn(5, generator=g)), i % 2) for i in range(8)]
    module = CausalRepairModule(ImageTab(), [_OwnRows()], unpack_batch=lambda b: (b[0][0], b[1], {"tab": b[0][1]}))
    trainer = quick_trainer(max_steps=1, num_sanity_val_steps=0)
    with pytest.raises(MisconfigurationException, match=r"forward arguments \(\['tab'\]\) beside term 'own_rows' \(_OwnRows\), "
                                                        r"whose loss makes rows of its own"):
        trainer.fit(module, DataLoader(pairs, batch_size=4))
    assert trainer.global_step == 0
