"""docs/your_model.md, "Irregularly sampled series": the snippet runs as printed and its answers match the data's
ground truth: the class is decided by channel 0 inside a time window, channel 2's observation rate depends on the
class (informative missingness), and the unobserved and padded entries of the observation mask (``attention_mask``
of the values' shape) are never set."""

from __future__ import annotations

import re
from pathlib import Path

import torch

PAGE = Path(__file__).resolve().parents[2] / "docs" / "your_model.md"


def test_the_irregular_series_snippet_finds_the_window_and_the_missingness() -> None:
    code = re.search(r"<!-- irregular -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(code, "<your_model.md irregular>", "exec"), ns)  # noqa: S102 - the docs' own example
    effects, mask, window = ns["effects"], ns["mask"][:64] > 0, ns["window"][:64]
    outside = effects[..., 0][~window & mask[..., 0]].abs().mean()
    channel1 = effects[..., 1][mask[..., 1]].abs().mean()
    assert ns["in_window"] > 1.3 * outside and ns["in_window"] > 2 * channel1
    missingness = ns["missingness"].abs().mean(0)
    assert int(missingness.argmax()) == 2 and missingness[2] > 1.5 * missingness[0]
    by_window = ns["by_window"].abs().mean(0)
    assert int(by_window.argmax()) == 3 and by_window[3] > 2 * torch.cat([by_window[:3], by_window[4:]]).max()


class _SeFT(torch.nn.Module):
    """Triples (time, channel, value) ``[N, M, 3]`` and the real observations ``attention_mask`` ``[N, M]``."""

    def __init__(self, channels=3):
        super().__init__()
        self.ch = torch.nn.Embedding(channels, 8)
        self.tv = torch.nn.Linear(2, 8)
        self.rho = torch.nn.Linear(8, 2)

    def forward(self, obs, attention_mask):
        h = torch.relu(self.tv(obs[..., [0, 2]]) + self.ch(obs[..., 1].long()))
        m = attention_mask[..., None].float()
        return self.rho((h * m).sum(1) / m.sum(1))


def test_the_set_of_observations_advice_runs_as_written() -> None:
    from lightning_causal.causal import input_effects
    from lightning_causal.causal.engine.chosen_input import chosen_input

    text = PAGE.read_text()
    mask_expression = re.search(r"`feature_mask=(torch\.stack\(\[torch\.full.*?\)\[None\])`", text, re.S).group(1)
    assert "chosen_input(model, (obs, attention_mask), 1)" in text
    torch.manual_seed(0)
    n, M = 8, 6
    real = torch.arange(M)[None] < torch.tensor([6, 4, 5, 6, 3, 6, 2, 5])[:, None]
    obs = torch.stack([torch.rand(n, M), torch.randint(0, 3, (n, M)).float(), torch.randn(n, M)], -1) * real[..., None]
    model = _SeFT().eval()
    masked, mask, args = chosen_input(model, (obs, real.float()), 1)
    removal = input_effects(masked, mask, additional_forward_args=args, target=1)
    assert removal.shape == (n, M) and bool((removal[~real] == 0).all()) and bool((removal[real] != 0).any())
    j = 1  # removing observation j by hand: the mask set to 0 there
    dropped = real.float().clone()
    dropped[:, j] = 0
    with torch.no_grad():
        by_hand = model(obs, real.float())[:, 1] - model(obs, dropped)[:, 1]
    torch.testing.assert_close(removal[:, j], by_hand)
    values = input_effects(model, obs, eval(mask_expression), additional_forward_args={"attention_mask": real.long()}, target=1)  # noqa: S307 - the page's own expression
    assert values.shape == (n, M + 1) and bool((values[:, :M][~real] == 0).all())
