"""neural_cleanse and reverse_trigger search a model whose outputs hold -infinity beside finite ones (a class ruled out
for a sample: a policy's ``out.masked_fill(illegal, float("-inf"))``), as they did before 1f7beb59: the -infinity has
probability 0 and a finite gradient, so the search gives the very triggers of the same model with -1e30 there. NaN,
+infinity and a sample whose every output is -infinity (the cross-entropy is NaN) are still refused before the search.
Before: every non-finite output was refused ("Expected the model's outputs ... to be finite")."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse
from lightning_causal.causal.backdoor.reverse import reverse_trigger


class _Masked(nn.Module):
    """Class 2 ruled out (filled with ``fill``) where the sample's first pixel is above 0.5; ``every``: all classes."""

    def __init__(self, fill: float, every: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net, self.fill, self.every = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)), fill, every

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        illegal = torch.zeros_like(out, dtype=torch.bool)
        illegal[:, 2] = x[:, 0, 0, 0] > 0.5
        if self.every:
            illegal |= illegal[:, 2:3]
        return out.masked_fill(illegal, self.fill)


X = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))


def _search(model: nn.Module) -> list[torch.Tensor]:
    r = neural_cleanse(model, X, 3, steps=20, generator=torch.Generator().manual_seed(0))
    t = reverse_trigger(model, X, 2, steps=20, generator=torch.Generator().manual_seed(0))
    return [torch.stack([q.mask for q in r.triggers]), torch.stack([q.pattern for q in r.triggers]), r.anomaly_index,
            t.mask, t.pattern]


def test_a_ruled_out_class_is_searched_as_a_large_finite_value():
    assert int(torch.isneginf(_Masked(float("-inf"))(X)).any(1).sum()) == 3  # 3 of the 12 samples (1, 4, 6) rule class 2 out
    ruled_out, large = _search(_Masked(float("-inf"))), _search(_Masked(-1e30))
    assert all(torch.equal(a, b) for a, b in zip(ruled_out, large))
    assert all(bool(t.isfinite().all()) for t in ruled_out)


@pytest.mark.parametrize("fill, every", [(float("nan"), False), (float("inf"), False), (float("-inf"), True)])
def test_nan_plus_infinity_and_a_sample_all_minus_infinity_are_refused(fill, every):
    said = r"-infinity in every class" if every else r"hold NaN or infinity"  # the opening says what was seen (second_s32a)
    with pytest.raises(ValueError, match=said + r" at samples \[1, 4, 6\] of 12: neural_cleanse's trigger search"):
        neural_cleanse(_Masked(fill, every), X, 3, steps=2)
    with pytest.raises(ValueError, match=r"at samples \[1, 4, 6\] of 12: reverse_trigger's trigger search"):
        reverse_trigger(_Masked(fill, every), X, 2, steps=2)
