"""The causal graph (and Captum's layer methods and the fairness carriers, which run the same one-sample check) on a zero-shot classifier's text tower (its class prompts kept as a buffer, the same rows for
every sample) named batch_first=False, a fold of 'N rows per sample' (Swin, OPT, a graph neural network) and said
unit_effects takes such a layer, none of which holds: unit_effects refuses it too. The graph now names rows every
sample shares, as unit_effects and the layer map do (review of 8843ba5c); a true fold and [T, N, D] keep their words."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.baselines import layer_attribute
from lightning_causal.causal import carrier_unit_effects, causal_graph


class ZeroShot(nn.Module):
    """logits = scale * cos(image, prompt): a GRU text tower over 4 prompts kept as a buffer."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.image = nn.Sequential(nn.Flatten(), nn.Linear(9, 8), nn.Tanh(), nn.Linear(8, 6))
        self.embed = nn.Embedding(6, 5)
        self.gru = nn.GRU(5, 7, batch_first=True)
        self.proj = nn.Linear(7, 6)
        self.register_buffer("prompts", torch.tensor([[1, 2], [1, 3], [1, 4], [1, 5]]))

    def forward(self, pixels):
        h, _ = self.gru(self.embed(self.prompts))
        text = F.normalize(self.proj(h[:, -1]), dim=-1)
        return 5.0 * F.normalize(self.image(pixels), dim=-1) @ text.T


@pytest.mark.parametrize("samples", [1, 2, 4, 6])  # 4: as many samples as prompts
@pytest.mark.parametrize("estimator", ["graph", "captum", "carriers"])
def test_graph_names_prompt_rows_every_sample_shares(samples, estimator):
    x = torch.rand(samples, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError) as err:
        if estimator == "graph":
            causal_graph(ZeroShot().eval(), x, layers=["image.1", "proj"])
        elif estimator == "carriers":
            carrier_unit_effects(ZeroShot().eval(), x, lambda v: 1 - v, "proj", target=0, unit_dim=-1)
        else:
            layer_attribute(ZeroShot().eval(), x, "proj", "LayerGradientXActivation", target=0, unit_dim=-1)
    text = str(err.value)
    assert "'proj'" in text and "the same 4 rows for all samples" in text
    assert "zero-shot classifier's text tower over its class prompts" in text
    assert "`unit_effects` or `UnitImportanceAudit`, which set a unit in every shared row" in text  # (leftovers_s34a)
    assert "batch_first" not in text and "rows per sample" not in text and "Swin" not in text


class Folded(nn.Module):
    """[N, 3, 4] flattened to [N·3, 4] before a Linear: 3 rows per sample, a true fold."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 4)
        self.head = nn.Linear(12, 2)

    def forward(self, x):
        n = x.shape[0]
        return self.head(self.fc(x.reshape(n * 3, 4)).reshape(n, 12))


def test_graph_keeps_its_words_for_a_true_fold():
    x = torch.rand(5, 3, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="With 3 rows per sample, the model may fold something into the batch") as err:
        causal_graph(Folded().eval(), x, layers=["fc"])
    assert "the same 3 rows" not in str(err.value)


def test_prompt_rows_of_two_tokens_are_named_as_shared():
    """The prompts' embeddings [4, 2, 5] (2 tokens a prompt) in a pass of 2 samples: the same rows alone and together,
    which the [T, N, D] guard of check_samples_first (dimension 1 the samples) took for batch_first=False. unit_effects
    measures them since leftovers_s34a (each unit set in every shared row: tests/causal/test_leftovers_s34a_shared_units.py)."""
    from lightning_causal.causal import unit_effects

    x = torch.rand(6, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError) as err:
        causal_graph(ZeroShot().eval(), x, layers=["embed"], unit_dim=-1)
    assert "the same 4 rows for all samples" in str(err.value) and "batch_first" not in str(err.value)
    assert unit_effects(ZeroShot().eval(), x, "embed", unit_dim=-1, target=0, return_info=True)[1].path == "shared"
