"""Review of 803c5a1 (repair_plumbing): a term of one's own written before the task hand-over keeps its own
attributes through it, and a step's ``last_parts`` are still a dict of floats for the user (``json.dumps``, ``dict``,
pickles) while they hold the step's tensors, soft labels whose task nothing says are warned of once per term, not
at every step, and the augmentations' draws are copied to the device once a kind."""

import json
import pickle
import warnings

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.augment import augmented_copies, patched, shifted
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm
from lightning_causal.repair.backdoor_parts import StepParts
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.module import CausalRepairModule
from tests.helpers.lightning import quick_trainer


class _Penalty(RepairTerm):
    """A term of one's own as docs/api.md showed it before the hand-over: it keeps the kind of its penalty in
    ``self._task``."""

    def __init__(self, task: str = "l1", **options):
        super().__init__(**options)
        self._task = task

    def loss(self, model, x, y):
        w = model.weight
        return w.abs().sum() if self._task == "l1" else (w**2).sum()


def test_a_term_of_ones_own_keeps_its_own_task_attribute_through_the_hand_over():
    torch.manual_seed(0)
    net = nn.Linear(4, 3)
    term = _Penalty("l2", weight=0.1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 0.0]] * 3))
    module = CausalRepairModule(net, [term], task_loss=nn.CrossEntropyLoss())
    assert term._task == "l2"  # the module's hand-over (take_task) overwrote it with ("multiclass",)
    assert term.task_of(None) == "multiclass"  # and the hand-over is still there
    assert term.loss(net, torch.zeros(1, 4), None).item() == 3 * (1 + 4 + 0.25)  # the squared penalty, not |w|
    data = DataLoader(TensorDataset(torch.randn(8, 4), torch.arange(8) % 3), batch_size=4)
    quick_trainer(max_epochs=1).fit(module, data)  # the hand-over again when the fit starts
    assert term._task == "l2" and term.task_of(None) == "multiclass"


def test_a_steps_parts_are_a_dict_of_floats_for_json_pickle_and_copies():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    mask = torch.zeros(1, 4, 4)
    mask[:, -1:, -1:] = 1.0
    term = BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 4, 4), target=1))
    term.setup(model)
    term.loss(model, torch.rand(6, 1, 4, 4), torch.arange(6) % 3)
    parts = term.last_parts
    by_hand = {k: float(v) for k, v in parts.tensors.items()}
    assert sorted(by_hand) == ["distill", "path", "unlearn"] and by_hand["unlearn"] > 0
    assert isinstance(parts, dict) and json.loads(json.dumps(parts)) == by_hand  # json.dumps: 'not JSON serializable'
    assert dict(parts) == {**parts} == parts.copy() == by_hand and parts == by_hand
    assert all(type(v) is float for v in (*dict(parts).values(), *parts.values(), *(v for _, v in parts.items())))
    again = pickle.loads(pickle.dumps(term)).last_parts
    assert again == by_hand and all(v.device.type == "cpu" for v in again.tensors.values())
    assert pickle.loads(pickle.dumps(StepParts({"a": 0.1})))["a"] == 0.1  # a number read back as the very float


def test_soft_labels_whose_task_nothing_says_are_warned_of_once_per_term_and_still_checked_every_step():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))  # says nothing of its task: the rows are a guess
    mask = torch.zeros(1, 4, 4)
    mask[:, -1:, -1:] = 1.0
    term = BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 4, 4), target=1))
    term.setup(model)
    x, soft = torch.rand(6, 1, 4, 4), torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]] * 2)
    twin = BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 4, 4), target=1))  # same seed: same augmented copies
    twin.setup(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        values = [term.loss(model, x, soft) for _ in range(3)]
    guesses = [w for w in caught if "soft labels" in str(w.message)]
    assert len(guesses) == 1  # one a step before: 3
    hard = [twin.loss(model, x, soft.argmax(1)) for _ in range(3)]
    assert all(torch.equal(v, h) for v, h in zip(values, hard))  # read as the rows' largest classes at every step
    bad = soft.clone()
    bad[0] = torch.tensor([0.7, 0.7, 0.1])
    with pytest.raises(ValueError, match="one class index per sample"):
        term.loss(model, x, bad)  # a later batch of rows not summing to 1 still refused
    other = BackdoorSuppressionTerm(Trigger(mask, torch.ones(1, 4, 4), target=1))
    other.setup(model)
    with pytest.warns(UserWarning, match="soft labels"):
        other.loss(model, x, soft)  # once per term: another term warns of its own


class _CopiesToDevice(TorchDispatchMode):
    """Counts the copies of host tensors to another device (on CUDA, from pageable memory, each waits for the
    device's queued work)."""

    def __init__(self) -> None:
        super().__init__()
        self.copies = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        device = kwargs.get("device")
        if func is torch.ops.aten._to_copy.default and args[0].device.type == "cpu" and device is not None \
                and torch.device(device).type != "cpu":
            self.copies += 1
        return func(*args, **kwargs)


def test_augmented_copies_copy_their_draws_to_the_device_once_a_kind_and_are_the_same_on_the_cpu():
    x = torch.rand(5, 2, 6, 6)
    kinds = ("mixup", "shift", "patch")
    on_meta = x.to("meta")  # a device other than the generator's: the draws are copied to it
    with _CopiesToDevice() as mode:
        augmented_copies(on_meta, kinds, torch.Generator().manual_seed(0))
    assert mode.copies == 4  # mixup's weights and partners, shift's offsets, the stamps' pixels (before: 2 + 2 + 4)
    copies, a, b = augmented_copies(x, kinds, torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)  # the draws by hand, in the order the kinds make them
    lam, partner = torch.rand(5, generator=gen), torch.randperm(5, generator=gen)
    dy, dx = torch.randint(-1, 2, (5,), generator=gen), torch.randint(-1, 2, (5,), generator=gen)
    assert torch.equal(copies[:5], lam.view(5, 1, 1, 1) * x + (1 - lam.view(5, 1, 1, 1)) * x[partner])
    assert torch.equal(copies[5:10], shifted(x, dy, dx))
    assert torch.equal(copies[10:], patched(x, gen)) and torch.equal(b, torch.cat([partner, torch.arange(5), torch.arange(5)]))
