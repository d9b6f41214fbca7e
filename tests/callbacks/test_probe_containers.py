"""Containers of batches and forward arguments: named tuples stay named tuples (forward may read their fields),
dataclass and named tuple batches are joined, a CombinedLoader is read from its first loader."""

import collections
import collections.abc
import dataclasses

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal import input_effects
from lightning_causal.data_reading import read_samples

Scaling = collections.namedtuple("Scaling", ["scale", "shift"])
Pair = collections.namedtuple("Pair", ["x", "y"])


class ScaledNet(nn.Module):
    """Reads its second argument's fields by name, as a user's forward would."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(4, 6), nn.Linear(6, 3)

    def forward(self, x, cfg):
        return self.fc2(torch.relu(self.fc1(x) * cfg.scale + cfg.shift))


def _net_and_data():
    torch.manual_seed(0)
    net = ScaledNet().eval()
    x = torch.randn(10, 4)
    return net, x, Scaling(torch.linspace(0.5, 2.0, 10)[:, None], torch.tensor(0.25))  # per-sample scale, shared shift


def test_probe_subset_keeps_a_named_tuple_forward_argument_and_its_rows():
    _, x, cfg = _net_and_data()
    sub = Probe(x, None, (cfg,)).subset(torch.tensor([3, 1]))
    (arg,) = sub.additional_forward_args
    assert type(arg) is Scaling
    assert torch.equal(arg.scale, cfg.scale[[3, 1]]) and arg.shift is cfg.shift


def test_an_audit_of_a_model_reading_named_tuple_fields_equals_the_core_estimate():
    net, x, cfg = _net_and_data()
    probe = Probe(x, None, (cfg,))
    (result,) = audit_model(net, [InputEffectAudit(target=0, ace_values=None)], probe, probe_size=10)
    expected = input_effects(net, x, target=0, additional_forward_args=(cfg,))
    by_hand = torch.stack([net(x, cfg)[:, 0] - net(torch.where(torch.arange(4) == j, 0.0, x), cfg)[:, 0] for j in range(4)], 1)
    assert torch.allclose(expected, by_hand, atol=1e-6)  # each sample scaled by its own row of cfg.scale
    assert torch.allclose(result.maps["effect"], by_hand, atol=1e-6)


class _Config(collections.abc.Mapping):
    """A configuration object read by attribute (as OmegaConf's DictConfig is), holding no per-sample tensor."""

    def __init__(self, **values):
        self._values = values

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __getattr__(self, key):
        try:
            return self.__dict__["_values"][key]
        except KeyError:
            raise AttributeError(key) from None


def test_a_mapping_config_read_by_attribute_reaches_forward_as_given():
    # before: every pass (and Probe.subset/to) rebuilt it as a dict, and forward's cfg.scale raised AttributeError
    net, x, _ = _net_and_data()
    cfg = _Config(scale=torch.tensor(2.0), shift=torch.tensor(0.25))
    plain = Scaling(cfg.scale, cfg.shift)
    expected = input_effects(net, x, target=0, additional_forward_args=(plain,))
    torch.testing.assert_close(input_effects(net, x, target=0, additional_forward_args=(cfg,)), expected)
    (arg,) = Probe(x, None, (cfg,)).subset(torch.tensor([3, 1])).to("cpu").additional_forward_args
    assert arg is cfg


class _PairSamples(Dataset):
    def __len__(self):
        return 20

    def __getitem__(self, i):
        return Pair(torch.full((3,), float(i)), i)


def test_a_named_tuple_batch_given_as_the_probe_is_cut_to_its_first_samples():
    batch = Pair(torch.arange(12.0).reshape(6, 2), torch.arange(6))
    head = read_samples(batch, 4)
    assert type(head) is Pair and torch.equal(head.y, torch.arange(4)) and head.x.shape == (4, 2)


def test_named_tuple_batches_of_a_loader_without_collation_are_joined_not_cut_to_the_first():
    batches = [Pair(torch.full((4, 3), float(i)), torch.full((4,), i)) for i in range(3)]

    class Batches(Dataset):  # items are whole batches: DataLoader(batch_size=None) does not collate
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    got = read_samples(DataLoader(Batches(), batch_size=None), 10)
    assert type(got) is Pair and torch.equal(got.y, torch.tensor([0] * 4 + [1] * 4 + [2] * 2))


@dataclasses.dataclass
class Fields:
    x: torch.Tensor
    y: torch.Tensor


def test_dataclass_batches_of_a_loader_without_collation_are_joined():
    batches = [Fields(torch.full((4, 3), float(i)), torch.full((4,), i)) for i in range(3)]

    class Batches(Dataset):
        def __len__(self):
            return len(batches)

        def __getitem__(self, i):
            return batches[i]

    got = read_samples(DataLoader(Batches(), batch_size=None, collate_fn=lambda b: b), 6)
    assert type(got) is Fields and torch.equal(got.y, torch.tensor([0] * 4 + [1] * 2))


class TopLevelNet(nn.Module):
    """ScaledNet with the named tuple's fields as separate arguments (Captum expands those itself)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, scale, shift):
        return self.net(x, Scaling(scale, shift))


def test_captum_expands_a_per_sample_tensor_nested_in_a_named_tuple_as_one_given_at_the_top():
    from lightning_causal.baselines import attribute

    net, x, cfg = _net_and_data()
    for method in ("IntegratedGradients", "FeatureAblation"):
        nested = attribute(net, x, method, target=1, additional_forward_args=(cfg,))
        top = attribute(TopLevelNet(net), x, method, target=1, additional_forward_args=(cfg.scale, cfg.shift))
        assert torch.allclose(nested, top, atol=1e-6), method
        assert nested.abs().sum() > 0


def test_a_combined_loader_given_as_the_probe_is_read_from_its_first_loader():
    from lightning.pytorch.utilities import CombinedLoader

    from lightning_causal.callbacks._probe import probe_from

    x, y = torch.arange(40.0).reshape(20, 2), torch.arange(20)
    loaders = {"a": DataLoader(TensorDataset(x, y), batch_size=4), "b": DataLoader(TensorDataset(-x, y), batch_size=4)}
    for mode in ("max_size_cycle", "sequential"):
        probe = probe_from(CombinedLoader(loaders, mode=mode), 6)
        assert torch.equal(probe.first, x[:6]) and torch.equal(probe.labels, y[:6])
