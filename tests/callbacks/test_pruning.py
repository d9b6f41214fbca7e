import copy

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.utils.prune as pytorch_prune
from lightning.pytorch.callbacks import ModelPruning
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.callbacks.pruning import causal_pruning_fn, causal_unit_scores
from lightning_causal.models import DigitsCNN, LightningClassifier
from tests.helpers.models import all_hook_counts, seeded


class PlantedCNN(nn.Module):
    """conv1 (4 filters) -> relu -> mean pool -> fc (4 -> 3).

    filter 0: dead (zero weights, bias -1: relu(-1) = 0, so zeroing it changes nothing);
    filter 1: essential (the only strong path to the logits);
    filter 2: the largest weights but almost no say in the logits (fc weight 0.001);
    filter 3: a moderate path.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)
        with torch.no_grad():
            w = torch.zeros(4, 1, 3, 3)
            w[1, 0, 1, 1] = 1.0
            w[2] = 5.0
            w[3, 0, 0, 0] = 0.5
            self.conv1.weight.copy_(w)
            self.conv1.bias.copy_(torch.tensor([-1.0, 0.0, 0.0, 0.0]))
            self.fc.weight.copy_(torch.tensor([[0.0, 4.0, 0.001, 1.0], [0.0, -4.0, 0.001, 0.5], [0.0, 0.0, 0.001, 0.0]]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(torch.relu(self.conv1(x)).mean((2, 3)))


X = torch.rand(32, 1, 6, 6, generator=torch.Generator().manual_seed(0))


def test_scores_rank_dead_filter_last_and_essential_first():
    scores = causal_unit_scores(PlantedCNN(), X, ["conv1"])["conv1"]
    assert scores[0] == 0.0
    assert scores.argmax() == 1 and scores.argmin() == 0
    assert scores[2] < scores[3]  # big weights, little effect: below the moderate path
    # L1 norms rank filter 2 first: the causal ranking differs where it matters
    assert PlantedCNN().conv1.weight.flatten(1).abs().sum(1).argmax() == 2


def test_prune_masks_lowest_units_whole_filters():
    model = PlantedCNN()
    method = causal_pruning_fn(model, X, ["conv1"])
    assert [(n) for _, n in method.parameters_to_prune] == ["weight", "bias"]
    method.prune(2)  # dead filter 0, then filter 2
    mask = model.conv1.weight_mask.flatten(1)
    assert mask[0].sum() == 0 and mask[2].sum() == 0 and mask[1].all() and mask[3].all()
    assert model.conv1.bias_mask.tolist() == [0.0, 1.0, 0.0, 1.0]
    method.prune(0.5)  # half of the 2 remaining: filter 3
    assert model.conv1.bias_mask.tolist() == [0.0, 1.0, 0.0, 0.0]
    method.prune(1.0)  # never the last unit of a layer
    assert model.conv1.bias_mask.tolist() == [0.0, 1.0, 0.0, 0.0]
    assert all(isinstance(h, pytorch_prune.BasePruningMethod) for h in model.conv1._forward_pre_hooks.values())


def test_global_vs_layer_scope():
    net = seeded(DigitsCNN(channels=(4, 8), hidden=8), 0).eval()
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    scores = causal_unit_scores(net, x, ["conv1", "conv2"])
    order = sorted([(float(s), layer, u) for layer in scores for u, s in enumerate(scores[layer])])[:3]
    causal_pruning_fn(net, x, ["conv1", "conv2"], scope="global").prune(3)
    pruned = {(layer, u) for layer in ("conv1", "conv2") for u in range(scores[layer].numel())
              if getattr(net, layer).bias_mask[u] == 0}
    assert pruned == {(layer, u) for _, layer, u in order}

    net2 = seeded(DigitsCNN(channels=(4, 8), hidden=8), 0).eval()
    causal_pruning_fn(net2, x, ["conv1", "conv2"], scope="layer").prune(0.5)
    assert int((net2.conv1.bias_mask == 0).sum()) == 2 and int((net2.conv2.bias_mask == 0).sum()) == 4
    assert set((net2.conv1.bias_mask == 0).nonzero().flatten().tolist()) == set(scores["conv1"].argsort()[:2].tolist())


def test_mismatched_parameters_fail_clearly():
    model = PlantedCNN()
    method = causal_pruning_fn(model, X, ["conv1"])
    with pytest.raises(RuntimeError, match="parameters_to_prune"):
        pytorch_prune.global_unstructured([(model.fc, "weight")], pruning_method=method, amount=1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"layers": ["nope"]}, "Unknown module name 'nope'"),
        ({"layers": []}, "non-empty"),
        ({"layers": ["fc", "relu"]}, "Unknown module name"),
        ({"scope": "local"}, r"Expected argument `scope` to be one of \('global', 'layer'\)"),
        ({"probe_inputs": [1.0, 2.0]}, "Expected argument `probe_inputs`"),
        ({"probe_inputs": torch.rand(4, 64)}, r"`probe_inputs` of shape \[\[4, 64\]\] to be accepted by the model"),  # was found a training epoch later
    ],
)
def test_bad_configuration(kwargs, match):
    args = {"model": PlantedCNN(), "probe_inputs": X, "layers": ["conv1"]} | kwargs
    with pytest.raises(MisconfigurationException, match=match):
        causal_pruning_fn(**args)


def test_layer_without_unit_weight_is_rejected():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(MisconfigurationException, match="convolutions or linear layers.*ReLU"):
        causal_pruning_fn(model, torch.rand(2, 4), ["1"])


def test_model_pruning_runs_in_a_trainer_fit(tmp_path):
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(64, 1, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g)
    net = seeded(DigitsCNN(channels=(4, 8), hidden=8), 0)
    module = LightningClassifier(net, lr=1e-2)
    method = causal_pruning_fn(module, x[:16], ["model.conv1", "model.conv2"])
    pruning = ModelPruning(method, parameters_to_prune=method.parameters_to_prune, amount=0.25,
                           use_lottery_ticket_hypothesis=False, make_pruning_permanent=True)
    trainer = pl.Trainer(max_epochs=2, callbacks=[pruning], logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=32))
    # two rounds of 25% of the remaining 12 filters: 3, then round(0.25 * 9) = 2
    dead = sum(int((m.weight.flatten(1).abs().sum(1) == 0).sum()) for m in (net.conv1, net.conv2))
    assert dead == 5
    assert not hasattr(net.conv1, "weight_mask") and all_hook_counts(net) == 0  # made permanent


def test_amount_rules_follow_torch_pruning_without_its_private_helpers():
    import torch.nn.utils.prune as torch_prune

    from lightning_causal.callbacks.pruning import _check_amount, _units_to_prune

    for amount, available in ((0.3, 10), (0.25, 7), (3, 5), (0.0, 4), (1.0, 6)):
        assert _units_to_prune(amount, available) == torch_prune._compute_nparams_toprune(amount, available)
    with pytest.raises(ValueError, match="at most 5 units"):
        _units_to_prune(6, 5)
    with pytest.raises(ValueError, match="`amount`"):
        _check_amount(1.5)
    with pytest.raises(ValueError, match="`amount`"):
        _check_amount(-1)
    with pytest.raises(TypeError, match="`amount`"):
        _check_amount("half")


def test_linear_layers_on_sequences_score_their_neurons_as_pruning_them_does():
    """A Linear applied per position ``[N, T, D]``: its units are the D output neurons (the weight
    rows), not the T positions; each score equals the logit change of pruning that row."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Flatten(1), nn.Linear(20, 2)).double()
    x = torch.rand(8, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    scores = causal_unit_scores(model, x, ["0"])["0"]
    assert scores.shape == (5,)
    with torch.no_grad():
        full = model(x)
        t = full.argmax(1, keepdim=True)
        for j in range(5):
            pruned = copy.deepcopy(model)
            pruned[0].weight[j] = 0.0
            pruned[0].bias[j] = 0.0
            assert float(scores[j]) == pytest.approx(float((full.gather(1, t) - pruned(x).gather(1, t)).abs().mean()), abs=1e-12)


def test_hugging_face_conv1d_is_refused():
    class Conv1D(nn.Module):  # GPT-2's layout: weight [in, out]
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(3, 4))

        def forward(self, x):
            return x @ self.weight

    model = nn.Sequential(Conv1D(), nn.Linear(4, 2))
    with pytest.raises(MisconfigurationException, match="Conv1D"):
        causal_pruning_fn(model, torch.rand(2, 3), ["0"])
