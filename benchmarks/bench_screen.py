"""Attribution-screen benchmark (issue 18, item 2): does `unit_effects(..., screen=m)` find the
units that matter, and what does it cost against the exhaustive call?

    .venv/bin/python benchmarks/bench_screen.py [--weights /tmp/lightning_causal_bench] [--repeats 3] [--only deep,ResNet,BERT]

Test set, fixed in this file before any of it was measured (the estimator, `method="attribution"`
with its frontier, was chosen on a separate development set: a DeepCNN of width 256 and a
ResNet18 of width 32 trained with seed 1, probed on the *last* 32 validation digits):

- deep CNN: `DeepCNN(depth=6, width=512)` trained on the 1,437 training digits (`fit_classifier`,
  PyTorch's default initialisation after `torch.manual_seed(0)`, Adam lr 1e-3, 3 epochs); layers
  `features.9` (a 512-channel conv at 4x4) and `features.10` (its ReLU);
- ResNet-style CNN: `ResNet18()` (11.2M parameters) trained on the training digits upscaled to
  3x32x32 (bilinear, grey replicated; seed 0, 2 epochs); layers `layers.6.c1` (inside a block:
  conv -> batch norm -> ReLU -> conv), `layers.7.c1` and `layers.6` (a block output), 512 units each;
- probe: the *first* 32 validation digits; intervention `Zero()`, predicted class;
- BERT MLP neurons (added 2026-12-02 13:10, before its first measurement; nothing tuned on it):
  `BertForSequenceClassification` from `BertConfig(hidden 128, 4 layers, 4 heads, intermediate
  512, vocabulary 64)` (`torch.manual_seed(0)`, random init) trained 2 epochs (AdamW lr 5e-4,
  batch 32) on `make_synthetic_text(4000, seed=0)`; layers `bert.encoder.layer.1.intermediate`
  and `bert.encoder.layer.3.intermediate` with `unit_dim=-1` (512 neurons each); probe: the first
  32 sentences of `make_synthetic_text(1000, seed=1)` with their attention mask.

Per layer: recall of the exact top-10 units (by mean |effect| over the probe) within the m units
ranked highest by the estimate (m = 10, 25, 50), for `"attribution"` and plain `"atp"`; Spearman
correlation of the two importance vectors; wall time of the estimate and of `screen=50` (medians
of `--repeats` interleaved calls) and of the exhaustive call (one call). Trained weights are
cached in `--weights`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal.causal import unit_effects  # noqa: E402
from lightning_causal.causal.engine.ranking import spearman  # noqa: E402
from lightning_causal.models import DeepCNN, ResNet18, fit_classifier, load_digits_tensors  # noqa: E402

SCREEN = 50
BERT_LAYERS = ["bert.encoder.layer.1.intermediate", "bert.encoder.layer.3.intermediate"]


def _upscale(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=32, mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)


CASES = {
    "deep CNN (6 conv, width 512)": (lambda: DeepCNN(depth=6, width=512), lambda x: x, 3, ["features.9", "features.10"]),
    "ResNet-18 (11.2M)": (ResNet18, _upscale, 2, ["layers.6.c1", "layers.7.c1", "layers.6"]),
}


def trained(name: str, weights: Path) -> tuple[torch.nn.Module, torch.Tensor, float]:
    build, prepare, epochs, _ = CASES[name]
    x_train, y_train, x_val, y_val = load_digits_tensors()
    torch.manual_seed(0)
    model = build()
    path = weights / f"{name.split(' ')[0].lower()}-{epochs}.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        fit_classifier(model, prepare(x_train), y_train, epochs=epochs, seed=0, lr=1e-3, reinit=False)
        weights.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    model.eval()
    with torch.no_grad():
        accuracy = float((model(prepare(x_val)).argmax(1) == y_val).float().mean())
    return model, prepare(x_val[:32]), accuracy


def _recall(exact_imp: torch.Tensor, score: torch.Tensor, m: int) -> float:
    top = set(exact_imp.topk(10).indices.tolist())
    return len(top & set(score.topk(m).indices.tolist())) / 10


def trained_bert(weights: Path) -> tuple[torch.nn.Module, torch.Tensor, dict, float]:
    """The BERT case of the module docstring: model, probe ids, forward arguments, dev accuracy."""
    from transformers import BertConfig, BertForSequenceClassification

    from lightning_causal.datasets import make_synthetic_text

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(vocab_size=64, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                                                     intermediate_size=512, max_position_embeddings=64, num_labels=2))
    train, dev = make_synthetic_text(4000, seed=0), make_synthetic_text(1000, seed=1)
    path = weights / "bert-2.pt"
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        opt, g = torch.optim.AdamW(model.parameters(), lr=5e-4), torch.Generator().manual_seed(0)
        model.train()
        for _ in range(2):
            for idx in torch.randperm(len(train.labels), generator=g).split(32):
                loss = F.cross_entropy(model(train.input_ids[idx], attention_mask=train.attention_mask[idx]).logits, train.labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        weights.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), path)
    model.eval()
    with torch.no_grad():
        accuracy = float((model(dev.input_ids, attention_mask=dev.attention_mask).logits.argmax(1) == dev.labels).float().mean())
    return model, dev.input_ids[:32], {"attention_mask": dev.attention_mask[:32]}, accuracy


def measure(model: torch.nn.Module, x: torch.Tensor, layer: str, repeats: int, **options) -> dict:
    times: dict[str, list[float]] = {"attribution": [], "atp": [], "screen": []}
    est: dict[str, torch.Tensor] = {}
    for _ in range(repeats):  # the short calls repeated, interleaved; medians
        for method in ("attribution", "atp"):
            t0 = time.perf_counter()
            est[method] = unit_effects(model, x, layer, method=method, **options)
            times[method].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        screened, info = unit_effects(model, x, layer, screen=SCREEN, return_info=True, **options)
        times["screen"].append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    exact = unit_effects(model, x, layer, **options)
    times["exhaustive"] = [time.perf_counter() - t0]
    imp = exact.abs().mean(0)
    out = {"units": exact.shape[1], "times": {k: statistics.median(v) for k, v in times.items()},
           "screen_exact_ok": bool(torch.allclose(screened[:, info.exact], exact[:, info.exact], atol=1e-5, rtol=1e-4))}
    for method, e in est.items():
        score = e.abs().mean(0)
        out[method] = {m: _recall(imp, score, m) for m in (10, 25, SCREEN)}
        out[method]["spearman"] = float(spearman(imp[None], score[None])[0])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--weights", type=Path, default=Path("/tmp/lightning_causal_bench"))
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the estimate and the screen (medians)")
    parser.add_argument("--only", default="deep,ResNet,BERT", help="comma-separated case name prefixes (default: all)")
    args = parser.parse_args()
    args.only = {name for name in (*CASES, "BERT") if any(name.startswith(k) for k in args.only.split(","))}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, probe 32, screen m = {SCREEN}\n")
    print("| model (val. acc.) | layer | units | recall@10/25/50 attribution | recall@10/25/50 atp | Spearman attr / atp "
          "| estimate (s) | screen=50 (s) | exhaustive (s) | screen/exhaustive | screened columns exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    runs = [(name, *trained(name, args.weights), layers, {}) for name, (_, _, _, layers) in CASES.items() if name in args.only]
    if "BERT" in args.only:
        model, x, forward_args, accuracy = trained_bert(args.weights)
        runs.append(("BERT neurons (hidden 128, 4 layers)", model, x, accuracy, BERT_LAYERS,
                     {"unit_dim": -1, "additional_forward_args": forward_args}))
    for name, model, x, accuracy, layers, options in runs:
        for layer in layers:
            r = measure(model, x, layer, args.repeats, **options)
            a, p, t = r["attribution"], r["atp"], r["times"]
            print(f"| {name} ({accuracy:.2f}) | {layer} | {r['units']} | {a[10]:.1f} / {a[25]:.1f} / {a[SCREEN]:.1f} "
                  f"| {p[10]:.1f} / {p[25]:.1f} / {p[SCREEN]:.1f} | {a['spearman']:.2f} / {p['spearman']:.2f} "
                  f"| {t['attribution']:.1f} | {t['screen']:.1f} | {t['exhaustive']:.1f} | {t['screen'] / t['exhaustive']:.2f}x "
                  f"| {r['screen_exact_ok']} |", flush=True)


if __name__ == "__main__":
    main()
