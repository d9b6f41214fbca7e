"""The ``trigger=None`` defaults on a domain nobody tuned on: 10 classes of coloured shapes on 3x32x32
images, a small residual CNN with BatchNorm (issue 17; the "not checked on larger images" gap).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_backdoor_rgb32.py [--clean 4] [--threads 1]

Every default was chosen on 8x8 digits (and the contrast's bound checked on 3x16x16 shapes,
``bench_backdoor_rgb.py``). This run changes nothing and tunes nothing: it trains ``--clean`` clean
models (seeds 0, 1, ...) and two poisoned ones (a 3x3 white patch in the lower right at 5% poisoning
→ class 2; a 4-pixel checker of the top left at 2% → class 7), sets the default
``BackdoorSuppressionTerm()`` up on a 10% clean repair set (Neural Cleanse, and the contrast with a
feature-shifted copy, on by default for images), and repairs with it for 20 epochs at 4e-3, as the
protocol does. Per model: what is flagged (plain, contrast), the set-up time, accuracy and ASR
before and after, and plain fine-tuning beside it. A flag on a clean model is a false alarm, and
its repair's accuracy change is what a user of the defaults pays for it.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from lightning_causal import BackdoorSuppressionTerm  # noqa: E402
from lightning_causal.causal import Trigger, attack_success_rate  # noqa: E402
from lightning_causal.datasets import poison  # noqa: E402

SIZE, CLASSES = 32, 10


def shapes32(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten shapes of a random colour, size and place on a noisy, tinted background: bars (horizontal,
    vertical), a square outline, a filled square, a ring, a disc, a plus, an X, a triangle, two dots."""
    y = torch.randint(0, CLASSES, (n,), generator=g)
    x = torch.rand(n, 3, SIZE, SIZE, generator=g) * 0.25 + torch.rand(n, 3, 1, 1, generator=g) * 0.2
    colour = torch.rand(n, 3, 1, 1, generator=g) * 0.5 + 0.5
    r = torch.randint(9, SIZE - 9, (n, 1, 1), generator=g)
    c = torch.randint(9, SIZE - 9, (n, 1, 1), generator=g)
    s = torch.randint(4, 8, (n, 1, 1), generator=g)
    yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    dy, dx = yy - r, xx - c
    d2 = dy**2 + dx**2
    masks = [
        (dy.abs() <= 1) & (dx.abs() <= s),
        (dx.abs() <= 1) & (dy.abs() <= s),
        ((dy.abs() - s).abs() <= 0) & (dx.abs() <= s) | ((dx.abs() - s).abs() <= 0) & (dy.abs() <= s),
        (dy.abs() <= s - 1) & (dx.abs() <= s - 1),
        (d2 - s**2).abs() <= s,
        d2 <= s**2,
        ((dy.abs() <= 1) & (dx.abs() <= s)) | ((dx.abs() <= 1) & (dy.abs() <= s)),
        (((dy - dx).abs() <= 1) | ((dy + dx).abs() <= 1)) & (dy.abs() <= s),
        (dy >= -s) & (dy <= s) & (dx.abs() <= (dy + s) // 2),
        ((dy**2 + (dx - s) ** 2) <= 4) | ((dy**2 + (dx + s) ** 2) <= 4),
    ]
    shape = torch.stack(masks)[y, torch.arange(n)]  # [n, SIZE, SIZE]
    x = torch.where(shape.unsqueeze(1), colour.expand(-1, 3, SIZE, SIZE), x)
    return x.clamp(0, 1), y


class Block(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout)
        self.conv2, self.bn2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout)
        self.skip = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=2, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return torch.relu(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))) + self.skip(x))


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.blocks = nn.Sequential(Block(8, 16), Block(16, 32))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, CLASSES))

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 2e-3)


def trainer(epochs: int) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, accelerator="cpu")


def stamp(shape: str, where: tuple[int, int], target: int) -> Trigger:
    """A white stamp: ``"square3"`` (3x3 solid) or ``"checker4"`` (4 pixels of a 3x3 checker's corners)."""
    mask = torch.zeros(1, SIZE, SIZE)
    r, c = where
    if shape == "square3":
        mask[:, r:r + 3, c:c + 3] = 1
    else:
        for i, j in ((0, 0), (0, 2), (2, 0), (2, 2)):
            mask[:, r + i, c + j] = 1
    return Trigger(mask=mask, pattern=torch.ones(3, SIZE, SIZE), target=target)


def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((net(x).argmax(1) == y).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clean", type=int, default=4, help="clean models (seeds 0, 1, ...)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-epochs", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    g = torch.Generator().manual_seed(0)
    xt, yt = shapes32(4000, g)
    xv, yv = shapes32(1000, g)
    sub = torch.randperm(len(yt), generator=torch.Generator().manual_seed(2))[:400]  # the 10% repair set
    attacks = {"clean": None, "square3 lower right 5% → 2": (stamp("square3", (SIZE - 4, SIZE - 4), 2), 0.05),
               "checker4 top left 2% → 7": (stamp("checker4", (1, 1), 7), 0.02)}
    runs = [("clean", s) for s in range(args.clean)] + [(k, 0) for k in attacks if k != "clean"]
    print("| model | acc / ASR before | plain flags (scores) | contrast flags (scores) | set-up (s) | default repair: acc / ASR | fine-tuning: acc / ASR |")
    print("|---|---|---|---|---|---|---|")
    t_all = time.perf_counter()
    for kind, seed in runs:
        attack = attacks[kind]
        x, y = (xt, yt) if attack is None else poison(xt, yt, attack[0], attack[1], generator=torch.Generator().manual_seed(1))[:2]
        trig = attack[0] if attack else stamp("square3", (SIZE - 4, SIZE - 4), 2)  # a clean model's natural rate
        pl.seed_everything(seed, verbose=False)
        net = Net()
        trainer(args.train_epochs).fit(net, DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True))
        net.eval()
        state = {k: v.clone() for k, v in net.state_dict().items()}  # repair_with_terms repairs a copy; kept as a check
        before = f"{accuracy(net, xv, yv):.3f} / {attack_success_rate(net, xv, yv, trig):.3f}"
        term = BackdoorSuppressionTerm()
        t0 = time.perf_counter()
        term.setup(net, xt[sub])
        setup_s = time.perf_counter() - t0
        flags = [f"{d.flagged} ({', '.join(f'{float(v):.2f}' for v in d.score)})" if d is not None else "not run"
                 for d in (term.detection, term.contrast_detection)]
        after = []
        for terms in ([term], []):  # the protocol's repair: Adam 4e-3, 20 epochs of batches of 32, seed 0
            net.load_state_dict(state)
            repaired = peers.repair_with_terms(net, terms, xt[sub], yt[sub], 20, 0, setup=False, lr=4e-3)
            after.append(f"{accuracy(repaired, xv, yv):.3f} / {attack_success_rate(repaired, xv, yv, trig):.3f}")
        print(f"| {kind}, seed {seed} | {before} | {flags[0]} | {flags[1]} | {setup_s:.1f} | {after[0]} | {after[1]} |", flush=True)
    print(f"\n{time.perf_counter() - t_all:.0f} s in all")


if __name__ == "__main__":
    main()
