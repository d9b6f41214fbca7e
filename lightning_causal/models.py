"""Small reference models and bundled data used by the demos, examples, benchmarks and tests.

Data ships with scikit-learn (``load_digits``: 1,797 8x8 images); nothing is downloaded.

``LightningClassifier`` loads on first use (PEP 562): ``import lightning_causal.models`` for the plain models,
the digits and ``fit_classifier`` loads no Lightning (seconds of imports a core-only user does not need).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, TypeVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal._lazy import lazy_exports
from lightning_causal._optimizers import adam_eps
from lightning_causal.causal.engine.checks import check_seed

__all__ = [
    "DigitsCNN",
    "DeepCNN",
    "ResidualCNN",
    "BasicBlock",
    "ResNet18",
    "MLP",
    "LightningClassifier",
    "load_digits_tensors",
    "fit_classifier",
]


class DigitsCNN(nn.Module):
    """LeNet-style CNN for 1x8x8 digits: two conv layers (``conv1``, ``conv2``) and two linear layers.

    Args:
        channels: the output channels of ``conv1`` and ``conv2``.
        hidden: the width of ``fc1``.
        num_classes: the number of classes (outputs of the last layer).
        batch_norm: put a ``BatchNorm2d`` (``bn1``) after ``conv1``; otherwise ``bn1`` is an identity.
        dropout: dropout probability before ``fc2`` (0: none).

    Examples:
        >>> DigitsCNN()(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(self, channels: tuple[int, int] = (16, 32), hidden: int = 64, num_classes: int = 10,
                 batch_norm: bool = False, *, dropout: float = 0.0) -> None:
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c1) if batch_norm else nn.Identity()
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * 4, hidden)
        self.relu3 = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.dropout(self.relu3(self.fc1(self.flatten(x)))))


class DeepCNN(nn.Module):
    """A deeper plain CNN (``depth`` >= 6 conv layers named ``features.<i>``) for 1x8x8 inputs.

    Args:
        depth: the number of conv layers.
        width: the channels of every conv layer.
        num_classes: the number of classes (outputs of the last layer).
    """

    def __init__(self, depth: int = 6, width: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c = 1
        for i in range(depth):
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU()]
            c = width
            if i == depth // 2 - 1:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


class ResidualCNN(nn.Module):
    """A CNN whose skip connection crosses ``conv2`` (the prefix/suffix split is impossible there).

    Args:
        width: the channels of ``conv1`` and ``conv2``.
        num_classes: the number of classes (outputs of the last layer).
    """

    def __init__(self, width: int = 8, num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(width * 4, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.conv1(x))
        return self.head(F.relu(self.conv2(h)) + h)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): ``relu(b2(c2(relu(b1(c1(x))))) + shortcut(x))``; the
    shortcut is the identity, or a 1x1 convolution and batch norm (projection) when the stride or
    the width changes.

    Args:
        in_channels: the input channels.
        out_channels: the output channels.
        stride: the stride of the first convolution (and of the projection).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(out_channels)
        self.c2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(out_channels)
        projection = stride != 1 or in_channels != out_channels
        self.shortcut: nn.Module = (
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))
            if projection
            else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.b1(self.c1(x)))
        return F.relu(self.b2(self.c2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """A CIFAR-style ResNet-18 for ``3x32x32`` inputs (11.2M parameters with the default width 64).

    A 3x3 stem (``stem``), four stages of two :class:`BasicBlock` each in ``layers.0`` ...
    ``layers.7`` (``width``, 2, 4 and 8 times ``width`` channels; the first block of stages 2-4
    halves the resolution with a projection shortcut), global average pooling and ``head``.

    Args:
        num_classes: the number of classes (outputs of the last layer).
        width: the channels of the first stage, as above.
        blocks: the number of blocks of each stage (the stages' count too).

    Examples:
        >>> ResNet18(width=8)(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
        >>> sum(p.numel() for p in ResNet18().parameters())
        11173962
    """

    def __init__(self, num_classes: int = 10, width: int = 64, blocks: tuple[int, ...] = (2, 2, 2, 2)) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        layers: list[nn.Module] = []
        channels = width
        for stage, count in enumerate(blocks):
            out = width * 2**stage
            for i in range(count):
                layers.append(BasicBlock(channels, out, 2 if stage > 0 and i == 0 else 1))
                channels = out
        self.layers = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layers(self.stem(x)))


class MLP(nn.Module):
    """A plain MLP ``in -> hidden -> ... -> out`` with layers ``net.0``, ``net.2``, ...

    Args:
        in_features: the input width.
        hidden: the widths of the hidden layers (each followed by a ReLU).
        out_features: the output width.
    """

    def __init__(self, in_features: int, hidden: tuple[int, ...] = (32, 16), out_features: int = 2) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = in_features
        for h in hidden:
            layers += [nn.Linear(d, h), nn.ReLU()]
            d = h
        layers.append(nn.Linear(d, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def load_digits_tensors(val_fraction: float = 0.2, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(x_train, y_train, x_val, y_val)`` from scikit-learn's digits, images ``[N, 1, 8, 8]`` in [0, 1].

    The split is a fixed permutation drawn from a private generator (the global RNG is untouched).

    Args:
        val_fraction: the share of the samples held out for validation, in ``(0, 1)``.
        seed: the seed of the permutation.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"Expected argument `val_fraction` in (0, 1) but got {val_fraction}")
    check_seed(seed)
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - examples extra
        raise ImportError("the digits data (load_digits_tensors, DigitsDataModule) needs scikit-learn: "
                          "pip install 'lightning_causal[examples]'") from err
    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = int(len(y) * val_fraction)
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], x[val], y[val]


#: ``LightningClassifier``'s optimizers: Adam, or SGD with momentum 0.9.
Optimizer = Literal["adam", "sgd"]

ModuleT = TypeVar("ModuleT", bound=nn.Module)  # fit_classifier returns the model it was given, of its own type


def fit_classifier(model: ModuleT, x: Tensor, y: Tensor, epochs: int, *, seed: int = 0, lr: float = 2e-3,
                   batch_size: int = 64, reinit: bool = True) -> ModuleT:
    """Train ``model`` by Adam on cross-entropy, reproducibly from ``seed`` alone.

    With ``reinit`` every parameter is first redrawn as ``U(-1, 1) / sqrt(fan_in)`` (``fan_in``:
    the elements of one output slice); the initial weights and the order of the mini-batches come
    from one private ``torch.Generator`` seeded with ``seed``, so the global RNG is untouched and
    the same seed gives the same weights bit for bit. Used by the benchmarks, examples and tests
    that need a quickly trained (e.g. poisoned) model without Lightning.

    Args:
        model: the classifier (its outputs are logits ``[N, C]``).
        x: inputs ``[N, ...]``.
        y: integer labels ``[N]``.
        epochs: passes over the data (an integer >= 0).
        seed: the seed of the private generator, as above.
        lr: Adam's learning rate.
        batch_size: samples per mini-batch (an integer >= 1).
        reinit: redraw every parameter first, as above.

    Returns:
        ``model`` itself (typed as given), trained, in eval mode, gradients cleared.

    Raises:
        ValueError: ``epochs`` < 0, ``batch_size`` < 1, or ``x`` and ``y`` of different lengths.

    Examples:
        >>> x, y = torch.rand(32, 4, generator=torch.Generator().manual_seed(0)), torch.arange(32) % 2
        >>> a = fit_classifier(nn.Linear(4, 2), x, y, epochs=2, seed=3)
        >>> b = fit_classifier(nn.Linear(4, 2), x, y, epochs=2, seed=3)
        >>> torch.equal(a.weight, b.weight), a.training
        (True, False)
    """
    for name, value, low in (("epochs", epochs, 0), ("batch_size", batch_size, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"Expected argument `{name}` to be an int >= {low} but got {value!r}")
    if len(x) != len(y):
        raise ValueError(f"Expected `x` and `y` of the same length but got {len(x)} and {len(y)}")
    g = torch.Generator().manual_seed(check_seed(seed))
    if reinit:
        with torch.no_grad():
            for p in model.parameters():
                p.uniform_(-1, 1, generator=g).mul_(1.0 / max(1, p[0].numel()) ** 0.5)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr, eps=adam_eps(model.parameters()))  # float16 weights: 1e-4
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval()


if TYPE_CHECKING:  # static analysers see the class here; at run time it loads on first use
    from lightning_causal._lightning_classifier import LightningClassifier as LightningClassifier


__getattr__ = lazy_exports(__name__, {"LightningClassifier": "lightning_causal._lightning_classifier"})[0]  # on first use


def __dir__() -> list[str]:
    return sorted({*globals(), "LightningClassifier"})
