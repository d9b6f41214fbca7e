"""Small reference models and bundled data used by the demos, examples, benchmarks and tests.

Data ships with scikit-learn (``load_digits``: 1,797 8x8 images); nothing is downloaded.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, TypeVar, get_args

import torch
from torch import Tensor, nn
from torch.nn import functional as F

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
    opt = torch.optim.Adam(model.parameters(), lr=lr)
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


def _lightning_classifier_base():  # keep `import lightning` lazy for users of the plain models
    import lightning.pytorch as pl

    return pl.LightningModule


def _takes_one_of(model: nn.Module, count: int) -> bool:
    """Whether ``model``'s forward takes one positional input where ``count`` (> 1) were given: it
    binds one argument and not ``count`` (a forward of ``(self, xs)`` unpacking a pair itself). A
    forward whose signature cannot be read is called with the inputs as positional arguments."""
    try:
        sig = inspect.signature(model.forward)
    except (TypeError, ValueError):
        return False
    try:
        sig.bind(*range(count))
    except TypeError:
        pass
    else:
        return False
    try:
        sig.bind(0)
    except TypeError:
        return False
    return True


class LightningClassifier(_lightning_classifier_base()):
    """Minimal ``LightningModule`` around a classifier: cross-entropy, accuracy, Adam or SGD.

    Args:
        model: the network; one of several inputs (``model(x_cont, x_cat)``) trains on batches
            ``((x_cont, x_cat), y)``, and the audits call it with the inputs as they come.
        lr: learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).

    Checkpoints hold ``lr`` and ``optimizer`` as hyper-parameters; the network is an object, not a
    hyper-parameter (its weights are in the state dict): load with
    ``LightningClassifier.load_from_checkpoint(path, model=MyNet())``. A classifier built by
    ``LightningCLI`` from a config (``model: {class_path: ..., init_args: ...}``) also saves the
    network's config, a plain value there, so its checkpoints load with
    ``LightningClassifier.load_from_checkpoint(path)`` alone (the network rebuilt from the config).
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, optimizer: Optimizer = "adam") -> None:
        super().__init__()
        if optimizer not in get_args(Optimizer):
            raise ValueError(f"Expected argument `optimizer` to be 'adam' or 'sgd' but got {optimizer!r}")
        from lightning_causal._cli import built_by_cli

        # built by LightningCLI, the network is a config (plain data): kept, for load_from_checkpoint(path)
        self.save_hyperparameters(ignore=None if built_by_cli() else ["model"])
        self.model = model
        self.lr = lr
        self.optimizer_name = optimizer

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Lightning's ``load_from_checkpoint`` (``lr`` and ``optimizer`` are the checkpoint's); the
        network is not a saved hyper-parameter, so pass it: ``load_from_checkpoint(path, model=MyNet())``,
        unless the classifier was built by ``LightningCLI``, whose checkpoints hold the network's config
        (``model=`` then replaces it).

        Args:
            checkpoint_path: the checkpoint's path (or a file-like object), as Lightning takes it.
            *args: passed on to Lightning's ``load_from_checkpoint``.
            **kwargs: passed on to Lightning's ``load_from_checkpoint`` (``model=``, ``map_location=``,
                ``weights_only=``, hyper-parameters to override).

        Raises:
            MisconfigurationException: ``model=`` not given for a checkpoint without the network's config.
        """
        from lightning_causal._cli import peek_checkpoint, saved_cli_config

        config = saved_cli_config(peek_checkpoint(checkpoint_path, kwargs.get("weights_only"))) if "model" not in kwargs else None
        if "model" not in kwargs and (config is None or "model" not in config):
            from lightning.pytorch.utilities.exceptions import MisconfigurationException

            raise MisconfigurationException(
                f"Expected the argument `model` in {cls.__name__}.load_from_checkpoint: the network is an object, not a saved "
                f"hyper-parameter (its weights are in the checkpoint); pass it, e.g. "
                f"`{cls.__name__}.load_from_checkpoint(path, model=MyNet())`")
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def forward(self, *inputs: Any) -> Tensor:
        """The network on the inputs: ``self(x)``; for a network of several inputs (``model(x_cont,
        x_cat)``) ``self(x_cont, x_cat)`` as the audits call it, or ``self((x_cont, x_cat))`` as the
        steps do with batches ``((x_cont, x_cat), y)``. A network whose forward takes the inputs as
        one tuple or list (``forward(self, xs)``) gets them so in both calls.

        Args:
            *inputs: the network's inputs, as above.
        """
        if len(inputs) == 1 and isinstance(inputs[0], (tuple, list)):
            several = inputs[0]
            return self.model(several) if _takes_one_of(self.model, len(several)) else self.model(*several)
        if len(inputs) > 1 and _takes_one_of(self.model, len(inputs)):
            return self.model(inputs)
        return self.model(*inputs)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log(f"{stage}_loss", loss, prog_bar=stage == "val")
        self.log(f"{stage}_acc", (logits.argmax(1) == y).float().mean(), prog_bar=stage == "val")
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def predict_step(self, batch: Tensor | tuple[Tensor, ...], batch_idx: int) -> Tensor:
        """The network's logits on the batch's inputs (a tensor, or ``(x, y)`` whose labels are ignored):
        ``trainer.predict``, and ``LightningCLI``'s ``predict --ckpt_path path``.

        Args:
            batch: a tensor of inputs, or ``(x, y)``.
            batch_idx: the batch's index (unused).
        """
        return self(batch[0] if isinstance(batch, (tuple, list)) else batch)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "sgd":
            return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)
        return torch.optim.Adam(self.parameters(), lr=self.lr)
