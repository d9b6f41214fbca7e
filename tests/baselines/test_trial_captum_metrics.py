"""Hand-checked faithfulness curves of CaptumBaseline's metrics (trial: captum)."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines.metrics import curve_auc, perturbation_curve


class _Squeezed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).squeeze(-1)


@pytest.mark.parametrize("model", [nn.Linear(4, 1), _Squeezed()], ids=["N1", "N"])
def test_softmax_score_of_a_single_output_model_is_refused(model):
    # The softmax of one output is 1 for every input: the curves were flat at 1 (AUC 1 for every
    # explanation, silently) for [N, 1], and an IndexError for [N].
    x, scores = torch.randn(3, 4), torch.randn(3, 4)
    with pytest.raises(ValueError, match="score='softmax'.*several outputs"):
        perturbation_curve(model, x, torch.arange(4)[None], scores, score="softmax")


def test_deletion_curve_of_a_linear_model_equals_the_hand_computed_one():
    model = nn.Linear(3, 1, bias=False).double()
    model.weight.data = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    x = torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64)
    frac, curves = perturbation_curve(model, x, torch.arange(3)[None], torch.tensor([[1.0, 2.0, 3.0]]), score="raw")
    # most important first: remove group 2 (3), then 1 (2), then 0 (1)
    assert curves.tolist() == [[6.0, 3.0, 1.0, 0.0]]
    assert torch.allclose(curve_auc(frac, curves), torch.tensor([(4.5 + 2.0 + 0.5) / 3], dtype=torch.float64))


def test_curves_figure_legend_tells_apart_areas_the_table_tells_apart():
    # AUCs 0.128 and 0.135 (the comparison table's 3 digits) both read "AUC 0.13" in the legend.
    from lightning_causal.reporting.comparison import curves_figure

    x = [0.0, 1.0]
    fig = curves_figure({"deletion": {"x": x, "causal": [0.128, 0.128], "Saliency": [0.135, 0.135]}})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["causal (AUC 0.128)", "Saliency (AUC 0.135)"]


@pytest.mark.parametrize("shape", [(3, 3), (2, 2), (2,)])
def test_infidelity_names_scores_of_a_wrong_shape(shape):
    # [3, 3] scores for 2 samples failed inside Captum with "The size of tensor a (3) must match ...",
    # and [2, 2] for 3 groups named `num_groups`, an argument the caller never passed.
    from lightning_causal.baselines.metrics import infidelity

    with pytest.raises(ValueError, match=r"`scores` of shape \[2, G >= 3\]"):
        infidelity(nn.Linear(3, 2), torch.randn(2, 3), torch.randn(*shape), torch.arange(3)[None])
