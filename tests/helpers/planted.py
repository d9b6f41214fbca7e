"""Hand-wired networks with known causal structure, for the causal graph tests."""

from __future__ import annotations

import torch
from torch import nn


def _set(linear: nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias if bias is not None else torch.zeros(weight.shape[0]))


class Planted(nn.Module):
    """x [N, 6] -> a (identity) -> b -> out (2 classes); linear, inputs positive.

    Strong wiring: a_i -> b_i with weight 2 (i = 0, 1, 2); out_0 = b_0 + b_1, out_1 = 3 b_2 - 2.
    Leaks (``leak`` times the strong weight): a_0 -> b_2 and b_1 -> out_1. b_3 = a_3 and
    b_5 = a_5 lead nowhere (no path to the output); b_4 = a_4 reaches both outputs with weight
    ``noisy`` (it moves the target logit whatever the class, by ``noisy * x_4``).
    """

    STRONG = {("a:0", "b:0"), ("a:1", "b:1"), ("a:2", "b:2"), ("b:0", "output:0"), ("b:1", "output:0"), ("b:2", "output:1")}

    def __init__(self, leak: float = 0.0, noisy: float = 0.0) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(6, 6), nn.Linear(6, 6), nn.Linear(6, 2)
        wb = torch.zeros(6, 6)
        wb[0, 0] = wb[1, 1] = wb[2, 2] = 2.0
        wb[2, 0] = 2.0 * leak
        wb[3, 3] = wb[4, 4] = wb[5, 5] = 1.0
        wo = torch.zeros(2, 6)
        wo[0, 0] = wo[0, 1] = 1.0
        wo[1, 2] = 3.0
        wo[1, 1] = 3.0 * leak
        wo[:, 4] = noisy
        _set(self.a, torch.eye(6))
        _set(self.b, wb)
        _set(self.out, wo, torch.tensor([0.0, -2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.b(self.a(x)))


def planted_inputs(n: int = 64, seed: int = 0) -> torch.Tensor:
    """Positive inputs ``U(0.5, 1.5)`` (both classes of :class:`Planted` occur)."""
    return torch.rand(n, 6, generator=torch.Generator().manual_seed(seed)) + 0.5


class Product(nn.Module):
    """a = x (2 units), b_0 = b_1 = a_0, out_0 = b_0 * b_1, out_1 = 0: each path a_0 -> b_j -> out
    carries the whole effect x_0^2 (setting either b_j to 0 zeroes the output), so the path effects
    sum to twice the total effect of a_0."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(2, 2), nn.Linear(2, 2)
        _set(self.a, torch.eye(2))
        _set(self.b, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.b(self.a(x))
        return torch.stack([h[:, 0] * h[:, 1], torch.zeros_like(h[:, 0])], dim=1)


class ResidualBlock(nn.Module):
    """h = relu(a(x)) (a = identity), out = W (relu(b(h)) + h) with b = [[1, 0], [0.5, 1]] and
    W = [[1, 2], [0, 0]]: the skip carries a_i to the output around b."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2)
        _set(self.a, torch.eye(2))
        _set(self.b, torch.tensor([[1.0, 0.0], [0.5, 1.0]]))
        _set(self.out, torch.tensor([[1.0, 2.0], [0.0, 0.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.out(torch.relu(self.b(h)) + h)


def layered_planted(widths: list[int], classes: int, seed: int, leak: tuple[float, float] = (0.001, 0.01),
                    leaks_per_unit: int = 2) -> tuple[nn.Module, list[torch.Tensor]]:
    """A random layered ReLU MLP with known wiring, for inputs ``U(0.5, 1.5)``.

    Layer ``l`` has ``widths[l]`` units (module ``layer{l}``; ``layer0`` is an identity on the
    inputs). Each unit of a later layer gets 1-3 strong inputs (weight ``U(1, 2)``) from the
    previous layer, drawn among the units that are not dead ends (about a quarter of the units of
    every layer before the last have no strong outputs), and ``leaks_per_unit`` leak inputs from
    other units, of ``U(leak)`` times 1.5 each. Each class gets 2 strong inputs from the last
    layer; the class biases centre the logits on a draw of the inputs, so that every class is
    predicted. Returns the model and the strong wiring masks (``[out, in]`` per linear layer, see
    :func:`planted_truth`). All weights are positive: the network is linear on positive inputs.
    """
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential()
    strong: list[torch.Tensor] = []
    dims = [*widths, classes]
    d = widths[0]
    for depth, w in enumerate(dims):
        lin = nn.Linear(d, w)
        last = depth == len(dims) - 1
        if depth == 0:
            weight, mask = torch.eye(w), torch.eye(w, dtype=torch.bool)
        else:
            alive = (torch.rand(d, generator=g) >= (0.0 if last else 0.25)).nonzero().flatten()
            mask = torch.zeros(w, d, dtype=torch.bool)
            weak = torch.zeros(w, d, dtype=torch.bool)
            for j in range(w):
                k = 2 if last else int(torch.randint(1, 4, (1,), generator=g))
                mask[j, alive[torch.randperm(alive.numel(), generator=g)[:k]]] = True
                others = (~mask[j]).nonzero().flatten()
                weak[j, others[torch.randperm(others.numel(), generator=g)[:leaks_per_unit]]] = True
            lo, hi = leak
            weight = torch.where(mask, 1 + torch.rand(w, d, generator=g),
                                 torch.where(weak, 1.5 * (lo + (hi - lo) * torch.rand(w, d, generator=g)), torch.zeros(w, d)))
        _set(lin, weight)
        strong.append(mask)
        model.add_module(f"layer{depth}" if not last else "head", lin)
        if not last:
            model.add_module(f"relu{depth}", nn.ReLU())
        d = w
    with torch.no_grad():
        calibration = torch.rand(512, widths[0], generator=g) + 0.5
        model.head.bias.copy_(-model(calibration).mean(0))
    return model, strong


def planted_truth(strong: list[torch.Tensor], classes: list[int]) -> set[tuple[str, str]]:
    """The edges a causal graph of a :func:`layered_planted` network should find when it explains
    ``classes``: the strong edges between units that reach one of them along strong edges."""
    reach = torch.zeros(strong[-1].shape[0], dtype=torch.bool)
    reach[classes] = True
    truth = set()
    for depth in range(len(strong) - 1, 0, -1):
        mask = strong[depth] & reach.view(-1, 1)
        tgt = "output" if depth == len(strong) - 1 else f"layer{depth}"
        truth |= {(f"layer{depth - 1}:{i}", f"{tgt}:{j}") for j, i in mask.nonzero().tolist()}
        reach = mask.any(0)
    return truth
