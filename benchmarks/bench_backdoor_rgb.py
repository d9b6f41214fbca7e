"""Neural Cleanse on few classes with small natural features (methods.md, "Assumptions and
limits"): a 4-class task of coloured shapes on 3x16x16 images, a 3x3 white patch at 5% poisoning.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_backdoor_rgb.py

Two models of the same data and seed: order A is trained with a validation loop, order B without
(a validation DataLoader draws its seed from the global RNG, so the training batches differ).
For each: ASR and accuracy; ``BackdoorAudit(steps=300, seed=s)`` at seeds 0-3 (flagged, the
target's mask norm and concentration, the natural classes' norms); Neural Cleanse at
``target_asr=0.99`` and with 4 starts; then 20 epochs of repair on 300 clean images at 4e-3 with
the known trigger (``BackdoorSuppressionTerm(trigger)``) and plain fine-tuning.

``--contrast-check``: only the ``trigger=None`` term's flags, plain and on the contrast with a
feature-shifted copy (on by default for images), on four clean models and the poisoned one.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal import BackdoorAudit, BackdoorSuppressionTerm, CausalRepairModule  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.causal import attack_success_rate, neural_cleanse  # noqa: E402
from lightning_causal.datasets import patch_trigger, poison  # noqa: E402

TARGET = 2


def shapes(n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Bars (horizontal, vertical), squares and rings of a random colour at random places, on noise."""
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.rand(n, 3, 16, 16, generator=g) * 0.3
    colour = torch.rand(n, 3, 1, 1, generator=g) * 0.6 + 0.4
    r, c = torch.randint(3, 9, (n,), generator=g), torch.randint(3, 9, (n,), generator=g)
    yy, xx = torch.meshgrid(torch.arange(16), torch.arange(16), indexing="ij")
    for k in range(4):
        m = y == k
        rr, cc = r[m].view(-1, 1, 1), c[m].view(-1, 1, 1)
        shape = [((yy - rr).abs() <= 1) & ((xx - cc).abs() <= 4), ((xx - cc).abs() <= 1) & ((yy - rr).abs() <= 4),
                 ((yy - rr).abs() <= 3) & ((xx - cc).abs() <= 3), ((yy - rr) ** 2 + (xx - cc) ** 2 - 9).abs() <= 3][k]
        x[m] = torch.where(shape.unsqueeze(1), colour[m].expand(-1, 3, 16, 16), x[m])
    return x.clamp(0, 1), y


class Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.AdaptiveAvgPool2d(2))
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(128, 4))

    def forward(self, x):
        return self.head(self.features(x))

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.log("val_acc", (self(batch[0]).argmax(1) == batch[1]).float().mean())

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), 2e-3)


def scores(net: nn.Module, x: torch.Tensor, y: torch.Tensor, trig) -> str:
    """Clean accuracy / ASR."""
    with torch.no_grad():
        return f"{float((net(x).argmax(1) == y).float().mean()):.3f} / {attack_success_rate(net, x, y, trig):.3f}"


def trainer(epochs: int) -> pl.Trainer:
    return pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False)


def main() -> None:
    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    g = torch.Generator().manual_seed(0)
    xt, yt = shapes(3000, g)
    xv, yv = shapes(600, g)
    trig = patch_trigger((3, 16, 16), 3, "bottom_right", 1.0, target=TARGET)
    xp, yp, _ = poison(xt, yt, trig, 0.05, generator=torch.Generator().manual_seed(1))
    sub = torch.randperm(3000, generator=torch.Generator().manual_seed(2))[:300]
    print("| order | acc / ASR | audit seeds 0-3: flagged; target norm (κ); natural norms | 0.99 rate | 4 starts | known-trigger repair: acc / ASR | fine-tuning: acc / ASR |")
    print("|---|---|---|---|---|---|---|")
    for order, with_val in (("A (validation loop)", True), ("B (no validation loop)", False)):
        pl.seed_everything(0, verbose=False)
        net = Net()
        trainer(8).fit(net, DataLoader(TensorDataset(xp, yp), batch_size=64, shuffle=True),
                       *([DataLoader(TensorDataset(xv, yv), batch_size=256)] if with_val else []))
        state = {k: v.clone() for k, v in net.state_dict().items()}
        net.eval()

        before = scores(net, xv, yv, trig)
        cells = []
        for seed in range(4):
            r = BackdoorAudit(steps=300, seed=seed).run(net, Probe(xv[:256], yv[:256]))
            norms, conc = r.vectors["mask_norm"].tolist(), r.vectors["mask_concentration"].tolist()
            natural = [v for c, v in enumerate(norms) if c != TARGET]
            cells.append(f"{r.meta['flagged']}; {norms[TARGET]:.2f} ({conc[TARGET]:.2f}); {min(natural):.1f}–{max(natural):.1f}")
        extra = [neural_cleanse(net, xv[:256], 4, **kw).flagged for kw in ({"target_asr": 0.99}, {"starts": 4})]
        repaired = []
        for terms in ([BackdoorSuppressionTerm(trig)], []):
            net.load_state_dict(state)
            pl.seed_everything(0, verbose=False)
            trainer(20).fit(CausalRepairModule(net, terms, lr=4e-3), DataLoader(TensorDataset(xt[sub], yt[sub]), batch_size=32, shuffle=True))
            net.eval()
            repaired.append(scores(net, xv, yv, trig))
        print(f"| {order} | {before} | {' · '.join(cells)} | {extra[0]} | {extra[1]} | {repaired[0]} | {repaired[1]} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")


def contrast_check() -> None:
    """The ``trigger=None`` term's flags, plain and on the contrast (on by default for images), on four
    clean models (seeds 0-3) and the 5%-poisoned one (seed 0), set up on the 300 repair images."""
    warnings.filterwarnings("ignore")
    g = torch.Generator().manual_seed(0)
    xt, yt = shapes(3000, g)
    trig = patch_trigger((3, 16, 16), 3, "bottom_right", 1.0, target=TARGET)
    sub = torch.randperm(3000, generator=torch.Generator().manual_seed(2))[:300]
    print("| model | plain: flagged (scores) | contrast: flagged (scores) |")
    print("|---|---|---|")
    for kind, seed in (("clean", 0), ("clean", 1), ("clean", 2), ("clean", 3), ("poisoned 5%", 0)):
        x, y = (xt, yt) if kind == "clean" else poison(xt, yt, trig, 0.05, generator=torch.Generator().manual_seed(1))[:2]
        pl.seed_everything(seed, verbose=False)
        net = Net()
        trainer(8).fit(net, DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True))
        term = BackdoorSuppressionTerm()
        term.setup(net.eval(), xt[sub])
        cells = [f"{d.flagged} ({', '.join(f'{float(v):.2f}' for v in d.score)})" for d in (term.detection, term.contrast_detection)]
        print(f"| {kind}, seed {seed} | {cells[0]} | {cells[1]} |", flush=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contrast-check", action="store_true",
                        help="only the trigger=None term's plain and contrast flags on 4 clean models and the poisoned one")
    if parser.parse_args().contrast_check:
        contrast_check()
    else:
        main()
