"""Final read of session 35 (git diff c92c0aac), two messages that misfired on ordinary models.

- feca39c2's segmentation hint fired on any target of two or more dimensions whose first size is N: a plain classifier
  given one-hot rows ``target=F.one_hot(y, 3)`` was told its target is "a segmentation mask" with a region ``8:16``.
  Two-dimensional targets now get the one-hot advice (``argmax(1)``); the mask wording stays for [N, H, W].
- eeb61505 left category codes out of CaptumBaseline's ``noise_sigma=``: with ``noise_sigma=0.0`` the masked sigma was
  all zeros, so stability was dropped with a note that the noise "would move only category codes" though the numeric
  columns vary. ``noise_sigma`` is the user's own scale: measured as given.
"""
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CaptumBaseline, Probe
from lightning_causal.causal import column_mask, input_effects


def test_a_one_hot_target_is_told_argmax_not_segmentation():
    torch.manual_seed(0)
    model = nn.Linear(4, 3).eval()
    x, y = torch.randn(6, 4), torch.arange(6) % 3
    with pytest.raises(ValueError) as err:
        input_effects(model, x, column_mask(4), target=F.one_hot(y, 3))
    message = str(err.value)
    assert "target=y.argmax(1)" in message
    assert "segmentation" not in message and "8:16" not in message


def test_a_mask_target_keeps_the_segmentation_advice():
    model = nn.Conv2d(1, 3, 1).eval()
    x = torch.randn(6, 1, 4, 4)
    with pytest.raises(ValueError, match="segmentation mask"):
        input_effects(model, x, column_mask(16).reshape(1, 4, 4), target=torch.zeros(6, 4, 4, dtype=torch.long),
                      output=lambda out: out.mean((2, 3)))


class CensusNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.occupation = nn.Embedding(6, 3)
        self.out = nn.Linear(5, 2)

    def forward(self, x):
        return self.out(torch.cat([x[:, :2], self.occupation(x[:, 2].long())], 1))


def test_noise_sigma_zero_beside_codes_is_measured_as_given():
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(32, 2, generator=g), torch.randint(0, 6, (32, 1), generator=g).float()], 1)
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CaptumBaseline(("Saliency",), noise_sigma=0.0).run(CensusNet().eval(), Probe(x))
    assert any("stability" in key for key in result.scalars)
    assert not any("only category codes" in note for note in result.meta.get("notes", []))


def test_the_layer_maps_nodes_are_listed_by_response_largest_first():
    """44402fcb left response-0 nodes off the card's top nodes, but the table stayed in forward order, so the card's
    "top" were the first layers, not the largest responses. The relative response is a layer's change over its norm:
    a first layer of a large constant bias, which the next layer's rows (summing to 0) cancel, responds least."""
    from lightning_causal.audits.layer_map import LayerMapAudit
    from lightning_causal.reporting.summary import markdown_summary

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[0].bias.fill_(100.0)
        model[1].weight.sub_(model[1].weight.mean(1, keepdim=True))
        model[1].bias.zero_()
    result = LayerMapAudit(threshold=0.999, layers=["0", "1", "3"]).run(model, Probe(torch.randn(16, 6)))
    responses = [row["response"] for row in result.tables["nodes"]]
    assert len(responses) >= 2 and responses == sorted(responses, reverse=True)
    by_layer = dict(zip(result.graphs["layer_map"]["layers"], result.vectors["layer_response"].tolist()))
    assert by_layer["1"] > by_layer["0"]  # forward order is not response order here
    card = markdown_summary(0, [result])
    largest = result.tables["nodes"][0]["node"]
    assert f"nodes: {largest} " in card


def test_a_compiled_conditional_denoiser_gets_the_conditions_advice():
    """cf5a2f75 read ``inspect.signature(model.forward)``: a ``torch.compile``d denoiser's is ``(*args, **kwargs)``, so it
    got the unconditional advice that reads its labels as ``sigma`` (the wrong answer cf5a2f75 mended);
    ``positional_names`` reads the compiled model's own forward."""
    from lightning.pytorch.utilities.exceptions import MisconfigurationException
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_causal import InputEffectAudit, audit_model
    from tests.callbacks.test_review_s35c_condition_hint_names import EdmDenoiser

    g = torch.Generator().manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)), batch_size=8)
    with pytest.raises(MisconfigurationException) as info:
        audit_model(torch.compile(EdmDenoiser(), backend="eager"), [InputEffectAudit(ace_values=None)], data, probe_size=8)
    assert "`forward` takes them as its `class_labels`" in str(info.value)


def test_perturbation_curves_clean_pass_flag_must_be_a_bool():
    """d1323ca4's public ``clean=(output, moved)``: a tensor as ``moved`` raised torch's "Boolean value of Tensor ...
    ambiguous" from the check meant to name ``clean``."""
    from lightning_causal.baselines.metrics import perturbation_curve

    model, x = nn.Linear(4, 2), torch.randn(3, 4)
    with pytest.raises(ValueError, match="Expected argument `clean`"):
        perturbation_curve(model, x, torch.arange(4).expand(3, 4), torch.rand(3, 4), target=0,
                           clean=(model(x), torch.tensor(True)))


def test_graph_stabilitys_codes_are_one_per_input():
    """765957d7's public graph_stability(codes=) was not checked: zip dropped inputs when the tuple was short, and
    ``codes=(None,)`` on a two-input model ended in a bare ``TypeError: forward() missing ... 'z'``."""
    from lightning_causal.causal.structure.graph import graph_stability

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.act, self.out = nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)

        def forward(self, x, z):
            return self.out(self.act(self.fc(x + z)))

    xs = (torch.randn(8, 4), torch.randn(8, 4))
    with pytest.raises(ValueError, match="Expected argument `codes`"):
        graph_stability(TwoInputs().eval(), xs, ["act"], codes=(None,))
